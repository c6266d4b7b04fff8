package panns_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	panns "github.com/panns/panns/bindings/go"
)

// Build an index, save it, open the file and search it.
func Example() {
	b, err := panns.NewBuilder(3, panns.Euclidean)
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()
	for i := 0; i < 100; i++ {
		x := float32(i)
		if _, err := b.Add([]float32{x, 2 * x, -x}); err != nil {
			log.Fatal(err)
		}
	}
	ix, err := b.Build(panns.BuildOptions{NTrees: 4})
	if err != nil {
		log.Fatal(err)
	}
	defer ix.Close()

	dir, _ := os.MkdirTemp("", "panns-example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "example.panns")
	if err := ix.Save(path); err != nil {
		log.Fatal(err)
	}
	opened, err := panns.Open(path)
	if err != nil {
		log.Fatal(err)
	}
	defer opened.Close()
	res, err := opened.Search([]float32{10, 20, -10}, 3, 0)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(opened.Len(), opened.Metric(), res[0].ID, res[0].Distance)
	// Output: 100 euclidean 10 0
}

// A live index: a writer adds and removes items by label and commits; a reader (in any
// process) picks the commits up with Refresh.
func ExampleCreateLive() {
	dir, _ := os.MkdirTemp("", "panns-live-example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "items.panns")
	w, err := panns.CreateLive(path, 2, panns.Euclidean, panns.BuildOptions{}, 0)
	if err != nil {
		log.Fatal(err)
	}
	defer w.Close()
	r, err := panns.OpenLive(path, false)
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	if err := w.Add([]uint64{1001, 1002, 1003}, [][]float32{{0, 0}, {5, 5}, {9, 9}}); err != nil {
		log.Fatal(err)
	}
	if _, err := w.Remove(1003); err != nil {
		log.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		log.Fatal(err)
	}
	changed, _ := r.Refresh()
	hits, err := r.Search([]float32{8, 8}, 2, 0)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(changed, r.Len(), hits[0].Label, hits[1].Label)
	// Output: true 2 1002 1001
}
