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
