// panns from C++: build an index, save it, open it again (memory-mapped), search it.
#include <panns.hpp>

#include <iostream>
#include <random>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  const std::string path = argc > 1 ? argv[1] : "example.panns";
  const std::uint32_t dim = 16;

  // Collect 1000 random vectors and build a forest of 16 trees.
  panns::Builder builder(dim, panns::Metric::Euclidean);
  std::mt19937 rng(12345);
  std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
  for (int i = 0; i < 1000; i++) {
    std::vector<float> v(dim);
    for (float& x : v) x = uniform(rng);
    builder.add(v);
  }
  panns::BuildOptions opts = panns::default_build_options();
  opts.n_trees = 16;
  builder.build(opts).save(path);

  // Open the file (memory-mapped, checksum verified) and look up item 42's neighbours.
  panns::Index index = panns::Index::open(path, /*verify=*/true);
  std::cout << path << ": " << index.size() << " items of dimension " << index.dim() << "\n";
  for (const panns::Neighbor& n : index.search(index.vector(42), 5)) {
    std::cout << "id " << n.id << ", distance " << n.distance << "\n";
  }

  // Every failure is a panns::Error with the C status code and the library's message.
  try {
    index.search(std::vector<float>(dim + 1, 1.0f), 5);
  } catch (const panns::Error& e) {
    std::cout << "error " << e.status() << ": " << e.what() << "\n";
  }
  return 0;
}
