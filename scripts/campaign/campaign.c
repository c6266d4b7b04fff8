/* The hostile-file campaign through the C API: every file named on the command line is
 * opened (with and without checksum verification) and, when it opens, searched every
 * way; each answer must keep the invariants (count <= min(k, len), ids < len, no NaN
 * distance, sorted, a stored row with a non-finite value never scores finite).
 * Prints one line of totals; exits 1 on any violation. A crash is caught by the
 * caller (scripts/campaign.sh). Build: cc campaign.c -lpanns. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include "panns.h"

static uint64_t state = 0x9E3779B97F4A7C15ull;
static double uniform(void) {
  state ^= state << 13; state ^= state >> 7; state ^= state << 17;
  return (double)(state >> 11) / 9007199254740992.0;
}

static long inputs, refused, opened, searches, search_errors, violations;

static int damaged(const PannsIndex *idx, uint32_t id, size_t dim, float *buf) {
  if (panns_index_get_vector(idx, id, buf, dim) != PANNS_OK) return 1;
  for (size_t j = 0; j < dim; j++)
    if (!isfinite(buf[j])) return 1;
  return 0;
}

static void check(const PannsIndex *idx, const uint32_t *ids, const float *d, size_t count, size_t k,
                  const char *path, float *buf) {
  size_t n = panns_index_len(idx), dim = panns_index_dim(idx);
  int ok = count <= (k < n ? k : n);
  for (size_t i = 0; ok && i < count; i++) {
    if (ids[i] >= n || isnan(d[i]) || (i > 0 && d[i - 1] > d[i])) ok = 0;
    else if (d[i] != INFINITY && damaged(idx, ids[i], dim, buf)) ok = 0;
  }
  if (!ok && ++violations <= 3) fprintf(stderr, "violation: %s (k %zu, count %zu)\n", path, k, count);
}

static void exercise(const PannsIndex *idx, const char *path) {
  static const size_t ks[] = {1, 5, 50, 400}, budgets[] = {0, 1, 20, 1000};
  size_t n = panns_index_len(idx), dim = panns_index_dim(idx);
  float *q = malloc(2 * dim * sizeof *q), *buf = malloc(dim * sizeof *buf);
  uint32_t *ids = malloc(2 * 400 * sizeof *ids);
  float *d = malloc(2 * 400 * sizeof *d);
  for (int rep = 0; rep < 3; rep++) {
    for (size_t j = 0; j < 2 * dim; j++) q[j] = (float)(uniform() * 2 - 1);
    size_t k = ks[(size_t)(uniform() * 4)], budget = budgets[(size_t)(uniform() * 4)], count = 0;
    searches++;
    if (panns_index_search(idx, q, dim, k, budget, ids, d, &count) == PANNS_OK) check(idx, ids, d, count, k, path, buf);
    else search_errors++;
    searches++;
    if (panns_index_linear_search(idx, q, dim, k, ids, d, &count) == PANNS_OK) check(idx, ids, d, count, k, path, buf);
    else search_errors++;
    searches++;
    if (panns_index_search_batch(idx, q, 2, dim, k, budget, ids, d) == PANNS_OK) {
      for (size_t row = 0; row < 2; row++) {
        size_t c = 0;
        while (c < k && ids[row * k + c] != UINT32_MAX) c++;
        check(idx, ids + row * k, d + row * k, c, k, path, buf);
      }
    } else search_errors++;
    /* A stored row as the query: refused when damaged, never a crash. */
    if (n > 0 && panns_index_get_vector(idx, (uint32_t)(uniform() * n), q, dim) == PANNS_OK) {
      searches++;
      if (panns_index_search(idx, q, dim, k, budget, ids, d, &count) == PANNS_OK) check(idx, ids, d, count, k, path, buf);
      else search_errors++;
    }
  }
  free(q); free(buf); free(ids); free(d);
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    for (uint32_t flags = 0; flags <= PANNS_OPEN_VERIFY; flags++) {
      PannsIndex *idx = NULL;
      inputs++;
      if (panns_index_open(argv[i], flags, &idx) != PANNS_OK) { refused++; continue; }
      opened++;
      exercise(idx, argv[i]);
      panns_index_free(idx);
    }
  }
  printf("c: %ld inputs (%ld opens refused, %ld opened), %ld searches (%ld refused), %ld invariant violations\n",
         inputs, refused, opened, searches, search_errors, violations);
  return violations != 0;
}
