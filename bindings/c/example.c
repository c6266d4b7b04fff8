/* panns from C: build an index, save it, open it again (memory-mapped), search it. */
#include <panns.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define DIM 16
#define N 1000

/* Exits with the library's message when a call fails. */
static void check(PannsStatus status, const char *what) {
  if (status != PANNS_OK) {
    fprintf(stderr, "%s failed (status %d): %s\n", what, (int)status, panns_last_error_message());
    exit(1);
  }
}

int main(int argc, char **argv) {
  const char *path = argc > 1 ? argv[1] : "example.panns";

  /* Collect N random vectors. */
  PannsBuilder *builder = NULL;
  check(panns_builder_new(DIM, PANNS_EUCLIDEAN, &builder), "panns_builder_new");
  uint64_t state = 12345;
  for (int i = 0; i < N; i++) {
    float v[DIM];
    for (int j = 0; j < DIM; j++) {
      state = state * 6364136223846793005ULL + 1442695040888963407ULL;
      v[j] = (float)(state >> 40) / (float)(1 << 24);
    }
    check(panns_builder_add(builder, v, DIM, NULL), "panns_builder_add");
  }

  /* Build a forest of 16 trees and save it. */
  PannsBuildOptions opts = panns_build_options_default();
  opts.n_trees = 16;
  PannsIndex *built = NULL;
  check(panns_builder_build(builder, &opts, &built), "panns_builder_build");
  panns_builder_free(builder);
  check(panns_index_save(built, path), "panns_index_save");
  panns_index_free(built);

  /* Open the file (memory-mapped, checksum verified) and look up item 42's neighbours. */
  PannsIndex *index = NULL;
  check(panns_index_open(path, PANNS_OPEN_VERIFY, &index), "panns_index_open");
  printf("%s: %zu items of dimension %u, %zu trees\n", path, panns_index_len(index),
         panns_index_dim(index), panns_index_n_trees(index));
  float query[DIM];
  check(panns_index_get_vector(index, 42, query, DIM), "panns_index_get_vector");
  uint32_t ids[5];
  float distances[5];
  size_t count = 0;
  check(panns_index_search(index, query, DIM, 5, 0, ids, distances, &count), "panns_index_search");
  for (size_t i = 0; i < count; i++) {
    printf("%zu. id %u, distance %.4f\n", i + 1, ids[i], distances[i]);
  }
  panns_index_free(index);
  return 0;
}
