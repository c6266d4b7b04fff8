/*
 * Tests of the panns C API (include/panns.h, contract: docs/c-api.md): every function,
 * every error path, buffer padding, thread-local error messages, concurrent searches
 * and, when PANNS_FIXTURE_DIR is set, the cross-language fixture written by
 * `cargo run -p panns-ffi --example fixture -- DIR`.
 *
 * The last line printed is "N passed, N failed"; the exit status is non-zero on failure.
 */
#define _GNU_SOURCE
#include <panns.h>

#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"

/* ---------------------------------------------------------------- helpers */

#define DIM 16

static uint64_t rng_state = 88172645463325252ULL;
static float uniform(void) { /* in [-1, 1) */
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return (float)((double)(rng_state >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}
static float *random_rows(size_t n, size_t dim) {
  float *v = malloc(n * dim * sizeof *v);
  for (size_t i = 0; i < n * dim; i++) v[i] = uniform();
  return v;
}

/* An index over `n` rows (caller frees both). */
static PannsIndex *build_index(const float *rows, size_t n, uint32_t metric, uint32_t n_trees) {
  PannsBuilder *b = NULL;
  PannsIndex *idx = NULL;
  CHECK_OK(panns_builder_new(DIM, metric, &b));
  CHECK_OK(panns_builder_add_batch(b, rows, n, DIM));
  PannsBuildOptions o = panns_build_options_default();
  o.n_trees = n_trees;
  CHECK_OK(panns_builder_build(b, &o, &idx));
  panns_builder_free(b);
  return idx;
}

static float l2(const float *a, const float *b, size_t d) {
  double s = 0;
  for (size_t i = 0; i < d; i++) s += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
  return (float)sqrt(s);
}

static char tmp_dir[64];
static char *tmp_path(const char *name) {
  static char buf[8][256];
  static int next;
  char *p = buf[next++ % 8];
  snprintf(p, 256, "%s/%s", tmp_dir, name);
  return p;
}

static void write_file(const char *path, const void *data, size_t len) {
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(data, 1, len, f) != len) {
    perror(path);
    exit(2);
  }
  fclose(f);
}

static unsigned char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *buf = malloc(n > 0 ? (size_t)n : 1);
  if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
    free(buf);
    fclose(f);
    return NULL;
  }
  fclose(f);
  *len = (size_t)n;
  return buf;
}

/* ---------------------------------------------------------------- tests */

static void test_version_and_defaults(void) {
  const char *v = panns_version();
  CHECK(v != NULL && strlen(v) >= 5 && strchr(v, '.') != NULL);
  PannsBuildOptions o = panns_build_options_default();
  CHECK(o.n_trees == 32);
  CHECK(o.leaf_size >= 1 && o.pool_size >= 1 && o.candidates >= 1);
  CHECK(o.split == 0 && o.threads == 0 && o.seed == 42);
  CHECK(PANNS_OPEN_VERIFY == 1);
  CHECK(sizeof(PannsStatus) == 4);
  CHECK(PANNS_OK == 0 && PANNS_BUFFER_TOO_SMALL == 11 && PANNS_PANIC == 12);
  CHECK(PANNS_EUCLIDEAN == 0 && PANNS_ANGULAR == 1 && PANNS_DOT == 2);
}

static void test_builder_errors(void) {
  PannsBuilder *b = (PannsBuilder *)(uintptr_t)0x8; /* must be reset to NULL on failure */
  CHECK_ERR(panns_builder_new(DIM, 0, NULL), PANNS_NULL_POINTER, "out");
  CHECK_ERR(panns_builder_new(0, 0, &b), PANNS_INVALID_ARGUMENT, "dimension 0");
  CHECK(b == NULL);
  CHECK_ERR(panns_builder_new(DIM, 3, &b), PANNS_INVALID_ARGUMENT, "metric code 3");
  CHECK(b == NULL);
  CHECK_ERR(panns_builder_new(1u << 20, 0, &b), PANNS_INVALID_ARGUMENT, "dimension");

  CHECK_OK(panns_builder_new(DIM, PANNS_ANGULAR, &b));
  CHECK(b != NULL);
  float v[DIM];
  for (int i = 0; i < DIM; i++) v[i] = (float)i + 1.0f;
  uint32_t id = 77;
  CHECK_ERR(panns_builder_add(NULL, v, DIM, &id), PANNS_NULL_POINTER, "builder");
  CHECK_ERR(panns_builder_add(b, NULL, DIM, &id), PANNS_NULL_POINTER, "vec");
  CHECK_ERR(panns_builder_add(b, v, DIM - 1, &id), PANNS_DIMENSION_MISMATCH, "expected 16");
  float bad[DIM];
  memcpy(bad, v, sizeof bad);
  bad[3] = NAN;
  CHECK_ERR(panns_builder_add(b, bad, DIM, &id), PANNS_NON_FINITE, "NaN");
  bad[3] = INFINITY;
  CHECK_ERR(panns_builder_add(b, bad, DIM, &id), PANNS_NON_FINITE, "component 3");
  float zero[DIM] = {0};
  CHECK_ERR(panns_builder_add(b, zero, DIM, &id), PANNS_ZERO_VECTOR, "zero length");
  CHECK(id == 77);
  CHECK(panns_builder_len(b) == 0);

  CHECK_OK(panns_builder_add(b, v, DIM, &id));
  CHECK(id == 0);
  CHECK_OK(panns_builder_add(b, v, DIM, NULL));
  CHECK(panns_builder_len(b) == 2);
  CHECK(panns_builder_len(NULL) == 0);

  /* Batches are all or nothing, and the message names the row. */
  float *rows = random_rows(5, DIM);
  rows[3 * DIM + 2] = NAN;
  CHECK_ERR(panns_builder_add_batch(b, rows, 5, DIM), PANNS_NON_FINITE, "vector 5");
  CHECK(panns_builder_len(b) == 2);
  CHECK_ERR(panns_builder_add_batch(NULL, rows, 5, DIM), PANNS_NULL_POINTER, "builder");
  CHECK_ERR(panns_builder_add_batch(b, NULL, 5, DIM), PANNS_NULL_POINTER, "rows");
  CHECK_ERR(panns_builder_add_batch(b, rows, 5, DIM + 1), PANNS_DIMENSION_MISMATCH, "got 17");
  CHECK_ERR(panns_builder_add_batch(b, rows, SIZE_MAX, DIM), PANNS_INVALID_ARGUMENT, "overflows");
  rows[3 * DIM + 2] = 0.5f;
  CHECK_OK(panns_builder_add_batch(b, rows, 5, DIM));
  CHECK(panns_builder_len(b) == 7);
  CHECK_OK(panns_builder_add_batch(b, rows, 0, DIM));
  free(rows);

  /* Build: bad options and NULLs leave the builder unchanged. */
  PannsIndex *idx = (PannsIndex *)(uintptr_t)0x8;
  PannsBuildOptions o = panns_build_options_default();
  CHECK_ERR(panns_builder_build(b, &o, NULL), PANNS_NULL_POINTER, "out");
  CHECK_ERR(panns_builder_build(NULL, &o, &idx), PANNS_NULL_POINTER, "builder");
  CHECK(idx == NULL);
  o.n_trees = 0;
  CHECK_ERR(panns_builder_build(b, &o, &idx), PANNS_INVALID_ARGUMENT, "n_trees");
  o = panns_build_options_default();
  o.leaf_size = 0;
  CHECK_ERR(panns_builder_build(b, &o, &idx), PANNS_INVALID_ARGUMENT, "leaf_size");
  o = panns_build_options_default();
  o.split = 9;
  CHECK_ERR(panns_builder_build(b, &o, &idx), PANNS_INVALID_ARGUMENT, "split");
  CHECK(idx == NULL);
  CHECK(panns_builder_len(b) == 7);

  CHECK_OK(panns_builder_build(b, NULL, &idx));
  CHECK(idx != NULL);
  CHECK(panns_index_len(idx) == 7);
  CHECK(panns_builder_len(b) == 0); /* the vectors moved into the index */
  PannsIndex *again = NULL;
  CHECK_ERR(panns_builder_build(b, NULL, &again), PANNS_EMPTY, "empty");
  CHECK(again == NULL);
  CHECK_OK(panns_builder_add(b, v, DIM, &id)); /* still usable */
  CHECK(id == 0);
  panns_index_free(idx);
  panns_builder_free(b);

  /* An empty builder cannot be built. */
  CHECK_OK(panns_builder_new(DIM, PANNS_EUCLIDEAN, &b));
  CHECK_ERR(panns_builder_build(b, NULL, &idx), PANNS_EMPTY, "add at least one vector");
  panns_builder_free(b);
  panns_builder_free(NULL);
  panns_index_free(NULL);
}

static void test_search(void) {
  const size_t n = 500, k = 10;
  float *rows = random_rows(n, DIM);
  PannsIndex *idx = build_index(rows, n, PANNS_EUCLIDEAN, 8);
  CHECK(panns_index_len(idx) == n);
  CHECK(panns_index_dim(idx) == DIM);
  CHECK(panns_index_metric(idx) == PANNS_EUCLIDEAN);
  CHECK(panns_index_n_trees(idx) == 8);
  CHECK(panns_index_len(NULL) == 0 && panns_index_dim(NULL) == 0);
  CHECK(panns_index_metric(NULL) == UINT32_MAX && panns_index_n_trees(NULL) == 0);

  /* A stored vector finds itself first, at distance 0. */
  uint32_t ids[10];
  float ds[10];
  size_t count = 0;
  CHECK_OK(panns_index_search(idx, rows + 123 * DIM, DIM, k, 0, ids, ds, &count));
  CHECK(count == k);
  CHECK(ids[0] == 123 && ds[0] == 0.0f);
  int sorted = 1;
  for (size_t i = 1; i < count; i++) sorted &= ds[i - 1] <= ds[i];
  CHECK(sorted);

  /* Linear search is exact: compare with a scan done here. */
  float q[DIM];
  for (int i = 0; i < DIM; i++) q[i] = uniform();
  CHECK_OK(panns_index_linear_search(idx, q, DIM, k, ids, ds, &count));
  CHECK(count == k);
  int exact = 1;
  for (size_t i = 0; i < k; i++) {
    float d = l2(q, rows + (size_t)ids[i] * DIM, DIM);
    exact &= fabsf(d - ds[i]) < 1e-4f;
    /* no item outside the result is nearer than the k-th */
  }
  for (size_t j = 0; j < n; j++) {
    int in = 0;
    for (size_t i = 0; i < k; i++) in |= ids[i] == j;
    if (!in) exact &= l2(q, rows + j * DIM, DIM) >= ds[k - 1] - 1e-5f;
  }
  CHECK(exact);
  /* The switch to the exact scan: a budget of half the items or more scans every item
   * (and so finds the exact answer); one less walks the trees. */
  uint32_t ids2[10];
  PannsSearchStats st;
  CHECK_OK(panns_index_search_with_stats(idx, q, DIM, k, n / 2, ids2, NULL, &count, &st));
  CHECK(st.exact_scan == 1 && st.scored == n && st.budget == n / 2);
  CHECK(count == k && memcmp(ids, ids2, sizeof ids) == 0);
  CHECK_OK(panns_index_search_with_stats(idx, q, DIM, k, n / 2 - 1, ids2, NULL, &count, &st));
  CHECK(st.exact_scan == 0 && st.budget == n / 2 - 1 && st.scored < n);
  /* An empty query is a dimension problem, not a NULL argument. */
  CHECK_ERR(panns_index_search(idx, NULL, 0, k, 0, ids, ds, &count), PANNS_DIMENSION_MISMATCH, "empty");

  /* Errors of both single-query searches. */
  CHECK_ERR(panns_index_search(NULL, q, DIM, k, 0, ids, ds, &count), PANNS_NULL_POINTER, "index");
  CHECK_ERR(panns_index_search(idx, NULL, DIM, k, 0, ids, ds, &count), PANNS_NULL_POINTER, "query");
  CHECK_ERR(panns_index_search(idx, q, DIM, k, 0, NULL, ds, &count), PANNS_NULL_POINTER, "out_ids");
  CHECK_ERR(panns_index_search(idx, q, DIM, k, 0, ids, ds, NULL), PANNS_NULL_POINTER, "out_count");
  CHECK_ERR(panns_index_search(idx, q, DIM, 0, 0, ids, ds, &count), PANNS_INVALID_ARGUMENT, "k must be at least 1");
  CHECK_ERR(panns_index_search(idx, q, DIM + 1, k, 0, ids, ds, &count), PANNS_DIMENSION_MISMATCH, "expected 16");
  CHECK_ERR(panns_index_linear_search(NULL, q, DIM, k, ids, ds, &count), PANNS_NULL_POINTER, "index");
  CHECK_ERR(panns_index_linear_search(idx, q, DIM, 0, ids, ds, &count), PANNS_INVALID_ARGUMENT, "k must be");
  CHECK_ERR(panns_index_linear_search(idx, q, 3, k, ids, ds, &count), PANNS_DIMENSION_MISMATCH, "got 3");
  CHECK_ERR(panns_index_linear_search(idx, NULL, DIM, k, ids, ds, &count), PANNS_NULL_POINTER, "query");
  float nanq[DIM];
  memcpy(nanq, q, sizeof q);
  nanq[5] = NAN;
  CHECK_ERR(panns_index_search(idx, nanq, DIM, k, 0, ids, ds, &count), PANNS_NON_FINITE, "component 5");
  CHECK_ERR(panns_index_linear_search(idx, nanq, DIM, k, ids, ds, &count), PANNS_NON_FINITE, "NaN");

  /* get_vector */
  float v[DIM + 1];
  CHECK_OK(panns_index_get_vector(idx, 7, v, DIM));
  CHECK(memcmp(v, rows + 7 * DIM, DIM * sizeof(float)) == 0);
  CHECK_ERR(panns_index_get_vector(idx, (uint32_t)n, v, DIM), PANNS_OUT_OF_RANGE, "500");
  CHECK_ERR(panns_index_get_vector(idx, UINT32_MAX, v, DIM), PANNS_OUT_OF_RANGE, "out of range");
  CHECK_ERR(panns_index_get_vector(idx, 0, v, DIM - 1), PANNS_BUFFER_TOO_SMALL, "15");
  CHECK_ERR(panns_index_get_vector(idx, 0, v, DIM + 1), PANNS_DIMENSION_MISMATCH, "expected 16");
  CHECK_ERR(panns_index_get_vector(idx, 0, NULL, DIM), PANNS_NULL_POINTER, "out");
  CHECK_ERR(panns_index_get_vector(NULL, 0, v, DIM), PANNS_NULL_POINTER, "index");
  panns_index_free(idx);
  free(rows);
}

static void test_angular_and_small_index(void) {
  float *rows = random_rows(3, DIM);
  PannsIndex *idx = build_index(rows, 3, PANNS_ANGULAR, 2);
  CHECK(panns_index_metric(idx) == PANNS_ANGULAR);
  float v[DIM];
  CHECK_OK(panns_index_get_vector(idx, 1, v, DIM));
  double norm = 0;
  for (int i = 0; i < DIM; i++) norm += (double)v[i] * v[i];
  CHECK(fabs(sqrt(norm) - 1.0) < 1e-5); /* stored unit-normalised */

  float zero[DIM] = {0};
  uint32_t ids[10];
  float ds[10];
  size_t count = 99;
  CHECK_ERR(panns_index_search(idx, zero, DIM, 5, 0, ids, ds, &count), PANNS_ZERO_VECTOR, "zero");
  CHECK(count == 99);
  /* k above the item count: min(k, len) results. */
  CHECK_OK(panns_index_search(idx, rows, DIM, 10, 0, ids, ds, &count));
  CHECK(count == 3 && ids[0] == 0 && ds[0] < 1e-6f);

  /* Batch: rows padded with UINT32_MAX / INFINITY past the 3 results. */
  enum { NQ = 4, K = 6 };
  float *qs = random_rows(NQ, DIM);
  uint32_t bids[NQ * K];
  float bds[NQ * K];
  CHECK_OK(panns_index_search_batch(idx, qs, NQ, DIM, K, 0, bids, bds));
  int padded = 1, same = 1;
  for (int r = 0; r < NQ; r++) {
    uint32_t one[K];
    CHECK_OK(panns_index_search(idx, qs + r * DIM, DIM, K, 0, one, NULL, &count));
    CHECK(count == 3);
    for (int i = 0; i < 3; i++) same &= bids[r * K + i] == one[i] && isfinite(bds[r * K + i]);
    for (int i = 3; i < K; i++) padded &= bids[r * K + i] == UINT32_MAX && isinf(bds[r * K + i]) && bds[r * K + i] > 0;
  }
  CHECK(same);
  CHECK(padded);
  CHECK_OK(panns_index_search_batch(idx, qs, NQ, DIM, K, 0, bids, NULL));
  CHECK_OK(panns_index_search_batch(idx, qs, 0, DIM, K, 0, bids, bds));

  /* Batch errors; the message names the failing query row. */
  CHECK_ERR(panns_index_search_batch(NULL, qs, NQ, DIM, K, 0, bids, bds), PANNS_NULL_POINTER, "index");
  CHECK_ERR(panns_index_search_batch(idx, NULL, NQ, DIM, K, 0, bids, bds), PANNS_NULL_POINTER, "queries");
  CHECK_ERR(panns_index_search_batch(idx, qs, NQ, DIM, K, 0, NULL, bds), PANNS_NULL_POINTER, "out_ids");
  CHECK_ERR(panns_index_search_batch(idx, qs, NQ, DIM, 0, 0, bids, bds), PANNS_INVALID_ARGUMENT, "k must be");
  CHECK_ERR(panns_index_search_batch(idx, qs, NQ, DIM - 2, K, 0, bids, bds), PANNS_DIMENSION_MISMATCH, "got 14");
  CHECK_ERR(panns_index_search_batch(idx, qs, SIZE_MAX, DIM, K, 0, bids, bds), PANNS_INVALID_ARGUMENT, "overflows");
  memset(qs + 2 * DIM, 0, DIM * sizeof(float));
  CHECK_ERR(panns_index_search_batch(idx, qs, NQ, DIM, K, 0, bids, bds), PANNS_ZERO_VECTOR, "query row 2");
  qs[2 * DIM] = NAN;
  CHECK_ERR(panns_index_search_batch(idx, qs, NQ, DIM, K, 0, bids, bds), PANNS_NON_FINITE, "query row 2");
  free(qs);
  panns_index_free(idx);
  free(rows);
}

static void test_files(void) {
  const size_t n = 400;
  float *rows = random_rows(n, DIM);
  PannsIndex *idx = build_index(rows, n, PANNS_DOT, 6);
  const char *path = tmp_path("index.panns");
  CHECK_OK(panns_index_save(idx, path));
  CHECK_ERR(panns_index_save(NULL, path), PANNS_NULL_POINTER, "index");
  CHECK_ERR(panns_index_save(idx, NULL), PANNS_NULL_POINTER, "path");
  CHECK_ERR(panns_index_save(idx, "/nonexistent-dir/sub/x.panns"), PANNS_IO, "/nonexistent-dir/sub/x.panns");
  CHECK_ERR(panns_index_save(idx, "\xff\xfe.panns"), PANNS_INVALID_ARGUMENT, "UTF-8");

  for (uint32_t flags = 0; flags <= PANNS_OPEN_VERIFY; flags++) {
    PannsIndex *m = NULL;
    CHECK_OK(panns_index_open(path, flags, &m));
    CHECK(m != NULL);
    CHECK(panns_index_len(m) == n && panns_index_dim(m) == DIM);
    CHECK(panns_index_metric(m) == PANNS_DOT && panns_index_n_trees(m) == 6);
    uint32_t a[8], b[8];
    float da[8], db[8];
    size_t ca = 0, cb = 0;
    int same = 1;
    for (int r = 0; r < 20; r++) {
      CHECK_OK(panns_index_search(idx, rows + r * DIM, DIM, 8, 100, a, da, &ca));
      CHECK_OK(panns_index_search(m, rows + r * DIM, DIM, 8, 100, b, db, &cb));
      same &= ca == cb && memcmp(a, b, sizeof a) == 0 && memcmp(da, db, sizeof da) == 0;
    }
    CHECK(same); /* the mapped index answers like the one built in memory */
    float v[DIM];
    CHECK_OK(panns_index_get_vector(m, 399, v, DIM));
    CHECK(memcmp(v, rows + 399 * DIM, sizeof v) == 0);
    /* A mapped index saves too. */
    CHECK_OK(panns_index_save(m, tmp_path("copy.panns")));
    panns_index_free(m);
  }

  PannsIndex *m = (PannsIndex *)(uintptr_t)0x8;
  CHECK_ERR(panns_index_open(tmp_path("missing.panns"), 0, &m), PANNS_IO, "missing.panns");
  CHECK(m == NULL);
  CHECK_ERR(panns_index_open(NULL, 0, &m), PANNS_NULL_POINTER, "path");
  CHECK_ERR(panns_index_open(path, 0, NULL), PANNS_NULL_POINTER, "out");
  CHECK_ERR(panns_index_open(path, 2, &m), PANNS_INVALID_ARGUMENT, "flag");
  CHECK_ERR(panns_index_open("\xc3\x28", 0, &m), PANNS_INVALID_ARGUMENT, "UTF-8");

  /* Garbage, truncated and damaged files. */
  size_t len = 0;
  unsigned char *bytes = read_file(path, &len);
  CHECK(bytes != NULL && len > 4096);
  unsigned char garbage[4096];
  for (size_t i = 0; i < sizeof garbage; i++) garbage[i] = (unsigned char)(i * 131 + 7);
  write_file(tmp_path("garbage.panns"), garbage, sizeof garbage);
  CHECK_ERR(panns_index_open(tmp_path("garbage.panns"), 0, &m), PANNS_CORRUPT, "not a panns index");
  write_file(tmp_path("empty.panns"), garbage, 0);
  CHECK_ERR(panns_index_open(tmp_path("empty.panns"), 0, &m), PANNS_CORRUPT, "empty.panns");
  write_file(tmp_path("truncated.panns"), bytes, len / 2);
  CHECK_ERR(panns_index_open(tmp_path("truncated.panns"), 0, &m), PANNS_CORRUPT, "truncated.panns");
  write_file(tmp_path("short-header.panns"), bytes, 100);
  CHECK_ERR(panns_index_open(tmp_path("short-header.panns"), PANNS_OPEN_VERIFY, &m), PANNS_CORRUPT, "short-header.panns");
  bytes[len - 5] ^= 0x40; /* inside the last section: only the checksum can tell */
  write_file(tmp_path("damaged.panns"), bytes, len);
  CHECK_ERR(panns_index_open(tmp_path("damaged.panns"), PANNS_OPEN_VERIFY, &m), PANNS_CORRUPT, "checksum");
  CHECK(m == NULL);
  CHECK_ERR(panns_index_open(tmp_dir, 0, &m), PANNS_IO, tmp_dir);
  free(bytes);
  panns_index_free(idx);
  free(rows);
}

static void test_add_file(void) {
  const size_t n = 30;
  float *rows = random_rows(n, DIM);
  /* .fvecs: each row is int32 dim + dim floats (little-endian, as on x86). */
  size_t rec = sizeof(int32_t) + DIM * sizeof(float);
  unsigned char *fv = malloc(n * rec);
  for (size_t i = 0; i < n; i++) {
    int32_t d = DIM;
    memcpy(fv + i * rec, &d, sizeof d);
    memcpy(fv + i * rec + sizeof d, rows + i * DIM, DIM * sizeof(float));
  }
  write_file(tmp_path("data.fvecs"), fv, n * rec);
  write_file(tmp_path("broken.fvecs"), fv, n * rec - 6);
  write_file(tmp_path("data.f32"), rows, n * DIM * sizeof(float));

  PannsBuilder *b = NULL;
  CHECK_OK(panns_builder_new(DIM, PANNS_EUCLIDEAN, &b));
  size_t added = 0;
  CHECK_OK(panns_builder_add_file(b, tmp_path("data.fvecs"), NULL, &added));
  CHECK(added == n);
  CHECK_OK(panns_builder_add_file(b, tmp_path("data.f32"), "train", NULL));
  CHECK(panns_builder_len(b) == 2 * n);
  CHECK_ERR(panns_builder_add_file(NULL, tmp_path("data.fvecs"), NULL, &added), PANNS_NULL_POINTER, "builder");
  CHECK_ERR(panns_builder_add_file(b, NULL, NULL, &added), PANNS_NULL_POINTER, "path");
  CHECK_ERR(panns_builder_add_file(b, tmp_path("nothing.fvecs"), NULL, &added), PANNS_IO, "nothing.fvecs");
  CHECK_ERR(panns_builder_add_file(b, tmp_path("broken.fvecs"), NULL, &added), PANNS_CORRUPT, "broken.fvecs");
  CHECK_ERR(panns_builder_add_file(b, "\xff.fvecs", NULL, &added), PANNS_INVALID_ARGUMENT, "UTF-8");
  CHECK(panns_builder_len(b) == 2 * n);

  PannsIndex *idx = NULL;
  CHECK_OK(panns_builder_build(b, NULL, &idx));
  float v[DIM];
  CHECK_OK(panns_index_get_vector(idx, (uint32_t)(n + 4), v, DIM));
  CHECK(memcmp(v, rows + 4 * DIM, sizeof v) == 0);
  panns_index_free(idx);
  panns_builder_free(b);

  CHECK_OK(panns_builder_new(DIM + 1, PANNS_EUCLIDEAN, &b));
  CHECK_ERR(panns_builder_add_file(b, tmp_path("data.fvecs"), NULL, &added), PANNS_DIMENSION_MISMATCH, "data.fvecs");
  CHECK(panns_builder_len(b) == 0);
  panns_builder_free(b);
  free(fv);
  free(rows);
}

/* CSV separator and header mode: PannsReadOptions. */
static void test_csv_options(void) {
  const char *text = "x;y;z\n1;2;3\n4;5;6\n";
  write_file(tmp_path("semi.csv"), text, strlen(text));
  PannsBuilder *b = NULL;
  CHECK_OK(panns_builder_new(3, PANNS_EUCLIDEAN, &b));
  size_t added = 0;
  CHECK_ERR(panns_builder_add_file(b, tmp_path("semi.csv"), NULL, &added), PANNS_CORRUPT, "separator ';'");
  PannsReadOptions o = panns_read_options_default();
  CHECK(o.separator == 0 && o.header == PANNS_HEADER_AUTO && o.dim == 0 && o.dataset == NULL);
  o.separator = ';';
  CHECK_OK(panns_builder_add_file_with(b, tmp_path("semi.csv"), &o, &added));
  CHECK(added == 2 && panns_builder_len(b) == 2);
  o.header = PANNS_HEADER_NO; /* "x;y;z" is now data: an error naming line 1, column 1 */
  CHECK_ERR(panns_builder_add_file_with(b, tmp_path("semi.csv"), &o, &added), PANNS_CORRUPT, "line 1");
  o.header = 7;
  CHECK_ERR(panns_builder_add_file_with(b, tmp_path("semi.csv"), &o, &added), PANNS_INVALID_ARGUMENT, "opts.header");
  o.header = PANNS_HEADER_AUTO;
  o.separator = '5';
  CHECK_ERR(panns_builder_add_file_with(b, tmp_path("semi.csv"), &o, &added), PANNS_INVALID_ARGUMENT, "separator");
  CHECK(panns_builder_len(b) == 2);
  size_t n = 0, d = 0;
  o.separator = ';';
  o.header = PANNS_HEADER_YES;
  CHECK_OK(panns_dataset_probe_with(tmp_path("semi.csv"), &o, &n, &d));
  CHECK(n == 2 && d == 3);
  float buf[6];
  char *err = NULL;
  CHECK(panns_dataset_read_with_e(tmp_path("semi.csv"), &o, buf, 6, &n, &d, &err) == PANNS_OK && err == NULL);
  CHECK(buf[0] == 1.0f && buf[5] == 6.0f);
  panns_builder_free(b);
}

/* The error message is per thread, and a success clears it. */
static void *other_thread_error(void *arg) {
  (void)arg;
  const char *msg = panns_last_error_message();
  return (void *)(uintptr_t)(msg != NULL && msg[0] == '\0');
}

static void test_error_messages(void) {
  CHECK_ERR(panns_builder_new(DIM, 42, NULL), PANNS_NULL_POINTER, "out");
  pthread_t t;
  void *clean = NULL;
  pthread_create(&t, NULL, other_thread_error, NULL);
  pthread_join(t, &clean);
  CHECK(clean != NULL); /* the other thread did not see this thread's error */
  CHECK(panns_last_error_message()[0] != '\0');
  CHECK(panns_index_len(NULL) == 0); /* accessors leave the message alone */
  CHECK(contains_nocase(panns_last_error_message(), "out"));
  PannsBuilder *b = NULL;
  CHECK_OK(panns_builder_new(DIM, 0, &b));
  CHECK(strcmp(panns_last_error_message(), "") == 0);
  panns_builder_free(b);
}

/* Recall of the approximate path (stats say the trees were walked) against the exact
 * neighbours from linear search, by ids. Random candidates would give budget / n = 10%. */
static void test_recall(void) {
  const size_t n = 5000, nq = 100, k = 10, budget = 500;
  float *rows = random_rows(n, DIM);
  PannsIndex *idx = build_index(rows, n, PANNS_EUCLIDEAN, 16);
  float *queries = random_rows(nq, DIM);
  size_t hits = 0, approx = 0;
  for (size_t q = 0; q < nq; q++) {
    uint32_t got[10], want[10];
    size_t count = 0, wcount = 0;
    PannsSearchStats st;
    CHECK_OK(panns_index_search_with_stats(idx, queries + q * DIM, DIM, k, budget, got, NULL, &count, &st));
    CHECK_OK(panns_index_linear_search(idx, queries + q * DIM, DIM, k, want, NULL, &wcount));
    approx += st.exact_scan == 0 && st.budget == budget && st.scored <= n / 2;
    for (size_t i = 0; i < count; i++)
      for (size_t j = 0; j < wcount; j++) hits += got[i] == want[j];
  }
  double recall = (double)hits / (double)(nq * k);
  printf("recall@10 at budget %zu of %zu items, 16 trees: %.3f\n", budget, n, recall);
  CHECK(approx == nq);
  CHECK(recall >= 0.80);
  free(queries);
  panns_index_free(idx);
  free(rows);
}

/* ---------------------------------------------------------------- dtype */

/* PannsDtype codes, as unsigned (the functions take uint32_t). */
#define DT_F32 ((uint32_t)PANNS_DTYPE_F32)
#define DT_I8 ((uint32_t)PANNS_DTYPE_I8)
#define DT_I8_F32 ((uint32_t)PANNS_DTYPE_I8_F32)

enum { DT_N = 3000, DT_DIM = 32, DT_CLUSTERS = 12, DT_NQ = 100, DT_K = 10, DT_BUDGET = 64 };

/* Recall@10 of the approximate path of `idx` against `truth` (DT_NQ x DT_K ids); counts the
 * searches that took the exact scan into *exact_scans. */
static double dtype_recall(const PannsIndex *idx, const float *queries, const uint32_t *truth, size_t *exact_scans) {
  size_t hits = 0;
  *exact_scans = 0;
  for (size_t q = 0; q < DT_NQ; q++) {
    uint32_t got[DT_K];
    size_t count = 0;
    PannsSearchStats st;
    memset(&st, 0xff, sizeof st);
    CHECK_OK(panns_index_search_with_stats(idx, queries + q * DT_DIM, DT_DIM, DT_K, DT_BUDGET, got, NULL, &count, &st));
    *exact_scans += st.exact_scan != 0;
    for (size_t i = 0; i < count; i++)
      for (size_t j = 0; j < DT_K; j++) hits += got[i] == truth[q * DT_K + j];
  }
  return (double)hits / (double)(DT_NQ * DT_K);
}

/* Same ids and bit-identical distances for every query. */
static int dtype_same_results(const PannsIndex *a, const PannsIndex *b, const float *queries) {
  int same = 1;
  for (size_t q = 0; q < DT_NQ; q++) {
    uint32_t ia[DT_K], ib[DT_K];
    float da[DT_K], db[DT_K];
    size_t ca = 0, cb = 0;
    CHECK_OK(panns_index_search(a, queries + q * DT_DIM, DT_DIM, DT_K, DT_BUDGET, ia, da, &ca));
    CHECK_OK(panns_index_search(b, queries + q * DT_DIM, DT_DIM, DT_K, DT_BUDGET, ib, db, &cb));
    same &= ca == DT_K && cb == DT_K && memcmp(ia, ib, sizeof ia) == 0 && memcmp(da, db, sizeof da) == 0;
  }
  return same;
}

/* Vectors stored as 8-bit codes (panns_index_set_dtype): recall on the approximate path
 * against the exact neighbours of the f32 vectors, file size, reopening, decoded vectors,
 * errors, and the way back to f32. */
static void test_dtype(void) {
  /* DT_CLUSTERS clusters: centres in [-2, 2)^32, points within 0.4 of them per component. */
  float *centres = malloc((size_t)DT_CLUSTERS * DT_DIM * sizeof *centres);
  for (size_t i = 0; i < (size_t)DT_CLUSTERS * DT_DIM; i++) centres[i] = 2.0f * uniform();
  float *rows = malloc((size_t)DT_N * DT_DIM * sizeof *rows);
  for (size_t i = 0; i < DT_N; i++) {
    size_t c = (size_t)((uniform() + 1.0f) * 0.5f * DT_CLUSTERS) % DT_CLUSTERS;
    for (size_t j = 0; j < DT_DIM; j++) rows[i * DT_DIM + j] = centres[c * DT_DIM + j] + 0.4f * uniform();
  }
  /* Queries: stored points moved a little. */
  float *queries = malloc((size_t)DT_NQ * DT_DIM * sizeof *queries);
  for (size_t q = 0; q < DT_NQ; q++) {
    size_t r = (size_t)((uniform() + 1.0f) * 0.5f * DT_N) % DT_N;
    for (size_t j = 0; j < DT_DIM; j++) queries[q * DT_DIM + j] = rows[r * DT_DIM + j] + 0.05f * uniform();
  }
  float lo[DT_DIM], hi[DT_DIM];
  for (size_t j = 0; j < DT_DIM; j++) lo[j] = hi[j] = rows[j];
  for (size_t i = 1; i < DT_N; i++)
    for (size_t j = 0; j < DT_DIM; j++) {
      float x = rows[i * DT_DIM + j];
      lo[j] = x < lo[j] ? x : lo[j];
      hi[j] = x > hi[j] ? x : hi[j];
    }

  PannsBuilder *b = NULL;
  PannsIndex *ix = NULL;
  CHECK_OK(panns_builder_new(DT_DIM, PANNS_EUCLIDEAN, &b));
  CHECK_OK(panns_builder_add_batch(b, rows, DT_N, DT_DIM));
  PannsBuildOptions o = panns_build_options_default();
  o.n_trees = 8;
  CHECK_OK(panns_builder_build(b, &o, &ix));
  panns_builder_free(b);
  if (ix == NULL) {
    free(queries);
    free(rows);
    free(centres);
    return;
  }
  CHECK_OK(panns_index_build_graph(ix, 16, 0));
  CHECK(panns_index_dtype(ix) == DT_F32);

  /* The reference: exact neighbours of the f32 vectors. */
  uint32_t *truth = malloc((size_t)DT_NQ * DT_K * sizeof *truth);
  for (size_t q = 0; q < DT_NQ; q++) {
    size_t count = 0;
    CHECK_OK(panns_index_linear_search(ix, queries + q * DT_DIM, DT_DIM, DT_K, truth + q * DT_K, NULL, &count));
    CHECK(count == DT_K);
  }
  size_t exact_scans = 99;
  double recall_f32 = dtype_recall(ix, queries, truth, &exact_scans);
  CHECK(exact_scans == 0); /* a budget of 64 of 3000 items: the graph is walked */
  const char *f32_path = tmp_path("dtype-f32.panns"), *i8_path = tmp_path("dtype-i8.panns");
  CHECK_OK(panns_index_save(ix, f32_path));

  /* To 8-bit codes: trees and graph stay. */
  CHECK_OK(panns_index_set_dtype(ix, DT_I8));
  CHECK(panns_index_dtype(ix) == DT_I8);
  CHECK(panns_index_len(ix) == DT_N && panns_index_dim(ix) == DT_DIM);
  CHECK(panns_index_n_trees(ix) == 8 && panns_index_graph_degree(ix) == 16);
  CHECK_OK(panns_index_set_dtype(ix, DT_I8)); /* already i8: nothing to do */
  CHECK(panns_index_dtype(ix) == DT_I8);
  exact_scans = 99;
  double recall_i8 = dtype_recall(ix, queries, truth, &exact_scans);
  printf("dtype: recall@10 at budget %d of %d items (graph of degree 16): f32 %.3f, i8 %.3f\n", DT_BUDGET, DT_N,
         recall_f32, recall_i8);
  CHECK(exact_scans == 0);
  CHECK(recall_f32 >= 0.8);
  CHECK(recall_i8 >= 0.8);
  CHECK(recall_i8 >= recall_f32 - 0.06);

  /* Decoded vectors: close to the originals; distances are those to the decoded vectors. */
  float *decoded = malloc((size_t)DT_N * DT_DIM * sizeof *decoded);
  int got_all = 1, close = 1, changed = 0;
  double worst = 0; /* largest |error| / range of its component */
  for (uint32_t i = 0; i < DT_N; i++) {
    got_all &= panns_index_get_vector(ix, i, decoded + (size_t)i * DT_DIM, DT_DIM) == PANNS_OK;
    for (size_t j = 0; j < DT_DIM; j++) {
      double range = (double)hi[j] - lo[j];
      double err = fabs((double)decoded[(size_t)i * DT_DIM + j] - rows[(size_t)i * DT_DIM + j]);
      close &= err <= 0.05 * range;
      changed |= err > 0;
      worst = err / range > worst ? err / range : worst;
    }
  }
  printf("dtype: largest decoding error %.5f of a component's range (half a step: %.5f)\n", worst, 0.5 / 255);
  CHECK(got_all);
  CHECK(close);
  CHECK(changed); /* the vectors really were re-stored */
  int dist_ok = 1;
  for (size_t q = 0; q < 10; q++) {
    uint32_t ids[DT_K];
    float ds[DT_K];
    size_t count = 0;
    CHECK_OK(panns_index_search(ix, queries + q * DT_DIM, DT_DIM, DT_K, DT_BUDGET, ids, ds, &count));
    for (size_t i = 0; i < count; i++) {
      float d = l2(queries + q * DT_DIM, decoded + (size_t)ids[i] * DT_DIM, DT_DIM);
      dist_ok &= fabsf(d - ds[i]) <= 1e-3f * (1.0f + d);
    }
  }
  CHECK(dist_ok);

  /* The saved file drops most of the vector bytes (4 per component -> 1). */
  CHECK_OK(panns_index_save(ix, i8_path));
  size_t f32_len = 0, i8_len = 0;
  unsigned char *f32_bytes = read_file(f32_path, &f32_len), *i8_bytes = read_file(i8_path, &i8_len);
  CHECK(f32_bytes != NULL && i8_bytes != NULL);
  size_t vector_bytes = (size_t)DT_N * DT_DIM * sizeof(float);
  printf("dtype: file of %zu bytes as f32, %zu as i8 (vectors: %zu bytes as f32)\n", f32_len, i8_len, vector_bytes);
  CHECK(i8_len < f32_len && f32_len - i8_len >= vector_bytes / 3 * 2);
  free(f32_bytes);
  free(i8_bytes);
  size_t ser_len = 0;
  CHECK_OK(panns_index_serialized_len(ix, &ser_len));
  CHECK(ser_len == i8_len);

  /* Reopened (checksum verified): still codes, same answers, same decoded vectors. */
  PannsIndex *m = NULL;
  CHECK_OK(panns_index_open(i8_path, PANNS_OPEN_VERIFY, &m));
  if (m != NULL) {
    CHECK(panns_index_dtype(m) == DT_I8);
    CHECK(panns_index_len(m) == DT_N && panns_index_graph_degree(m) == 16 && panns_index_n_trees(m) == 8);
    CHECK(dtype_same_results(ix, m, queries));
    float v[DT_DIM];
    int same_vectors = 1;
    for (uint32_t i = 0; i < DT_N; i += 97) {
      same_vectors &= panns_index_get_vector(m, i, v, DT_DIM) == PANNS_OK;
      same_vectors &= memcmp(v, decoded + (size_t)i * DT_DIM, sizeof v) == 0;
    }
    CHECK(same_vectors);
    /* A mapped index converts too, and back to f32 it holds the decoded vectors. */
    CHECK_OK(panns_index_set_dtype(m, DT_F32));
    CHECK(panns_index_dtype(m) == DT_F32);
    CHECK_OK(panns_index_get_vector(m, 5, v, DT_DIM));
    CHECK(memcmp(v, decoded + 5 * DT_DIM, sizeof v) == 0);
    panns_index_free(m);
  }
  /* The f32 file, opened (memory-mapped) and converted, is the index converted in memory. */
  m = NULL;
  CHECK_OK(panns_index_open(f32_path, 0, &m));
  if (m != NULL) {
    CHECK(panns_index_dtype(m) == DT_F32);
    CHECK_OK(panns_index_set_dtype(m, DT_I8));
    CHECK(panns_index_dtype(m) == DT_I8);
    CHECK(dtype_same_results(ix, m, queries));
    panns_index_free(m);
  }
  /* Codes with the f32 vectors beside them: walks return exact f32 distances, exact
   * scans are the f32 ones, the stored vector is the f32 row, and a file keeps both. */
  m = NULL;
  CHECK_OK(panns_index_open(f32_path, 0, &m));
  if (m != NULL) {
    CHECK_OK(panns_index_set_dtype(m, DT_I8_F32));
    CHECK(panns_index_dtype(m) == DT_I8_F32);
    int exact = 1, rows_kept = 1;
    for (size_t q = 0; q < 10; q++) {
      uint32_t ids[DT_K], lin[DT_K];
      float ds[DT_K];
      size_t count = 0, lc = 0;
      CHECK_OK(panns_index_search(m, queries + q * DT_DIM, DT_DIM, DT_K, DT_BUDGET, ids, ds, &count));
      for (size_t i = 0; i < count; i++)
        exact &= fabsf(l2(queries + q * DT_DIM, rows + (size_t)ids[i] * DT_DIM, DT_DIM) - ds[i]) <= 1e-5f * (1.0f + ds[i]);
      CHECK_OK(panns_index_linear_search(m, queries + q * DT_DIM, DT_DIM, DT_K, lin, NULL, &lc));
      exact &= lc == DT_K && memcmp(lin, truth + q * DT_K, sizeof lin) == 0;
    }
    float v[DT_DIM];
    CHECK_OK(panns_index_get_vector(m, 9, v, DT_DIM));
    rows_kept &= memcmp(v, rows + 9 * DT_DIM, sizeof v) == 0;
    CHECK(exact);
    CHECK(rows_kept);
    const char *both_path = tmp_path("dtype-i8-f32.panns");
    CHECK_OK(panns_index_save(m, both_path));
    PannsIndex *both = NULL;
    CHECK_OK(panns_index_open(both_path, PANNS_OPEN_VERIFY, &both));
    if (both != NULL) {
      CHECK(panns_index_dtype(both) == DT_I8_F32);
      CHECK(dtype_same_results(m, both, queries));
      panns_index_free(both);
    }
    panns_index_free(m);
  }

  /* Errors leave the index as it was. */
  CHECK_ERR(panns_index_set_dtype(ix, 3), PANNS_INVALID_ARGUMENT, "dtype = 3");
  CHECK(panns_index_dtype(ix) == DT_I8);
  CHECK_ERR(panns_index_set_dtype(ix, 99), PANNS_INVALID_ARGUMENT, "dtype = 99");
  CHECK(panns_index_dtype(ix) == DT_I8);
  CHECK_ERR(panns_index_set_dtype(ix, UINT32_MAX), PANNS_INVALID_ARGUMENT, "dtype");
  CHECK(panns_index_dtype(ix) == DT_I8);
  CHECK_ERR(panns_index_set_dtype(NULL, DT_I8), PANNS_NULL_POINTER, "index");
  CHECK(panns_index_dtype(NULL) == 0);
  char *err = NULL;
  CHECK(panns_index_set_dtype_e(ix, 99, &err) == PANNS_INVALID_ARGUMENT);
  CHECK(err != NULL && strstr(err, "dtype = 99") != NULL && strstr(err, "PANNS_DTYPE_I8") != NULL);
  panns_error_free(err);
  err = NULL;
  CHECK(panns_index_set_dtype_e(NULL, DT_F32, &err) == PANNS_NULL_POINTER);
  CHECK(err != NULL && contains_nocase(err, "index"));
  panns_error_free(err);
  CHECK(panns_index_set_dtype_e(ix, 7, NULL) == PANNS_INVALID_ARGUMENT); /* error may be NULL */
  CHECK(panns_index_dtype(ix) == DT_I8);
  CHECK(dtype_same_results(ix, ix, queries));

  /* Back to f32: the decoded vectors (the rounding stays), trees and graph kept. */
  err = (char *)"not touched";
  CHECK(panns_index_set_dtype_e(ix, DT_F32, &err) == PANNS_OK && err == NULL);
  CHECK(panns_index_dtype(ix) == DT_F32);
  CHECK(panns_index_n_trees(ix) == 8 && panns_index_graph_degree(ix) == 16);
  float v[DT_DIM];
  int back = 1;
  for (uint32_t i = 0; i < DT_N; i += 37) {
    back &= panns_index_get_vector(ix, i, v, DT_DIM) == PANNS_OK;
    back &= memcmp(v, decoded + (size_t)i * DT_DIM, sizeof v) == 0;
  }
  CHECK(back);
  exact_scans = 99;
  double recall_back = dtype_recall(ix, queries, truth, &exact_scans);
  CHECK(exact_scans == 0 && recall_back >= 0.8);

  free(decoded);
  free(truth);
  panns_index_free(ix);
  free(queries);
  free(rows);
  free(centres);
}

/* The 1.1 additions: bytes, status strings, per-call errors, datasets. */
static void test_additions(void) {
  const size_t n = 300;
  float *rows = random_rows(n, DIM);
  PannsIndex *idx = build_index(rows, n, PANNS_EUCLIDEAN, 4);
  size_t len = 0, need = 0, written = 0;
  CHECK_OK(panns_index_serialized_len(idx, &len));
  CHECK(len > n * DIM * sizeof(float));
  unsigned char *buf = malloc(len);
  CHECK_ERR(panns_index_serialize(idx, buf, len - 1, &need), PANNS_BUFFER_TOO_SMALL, "needs");
  CHECK(need == len);
  CHECK_OK(panns_index_serialize(idx, buf, len, &written));
  CHECK(written == len);
  PannsIndex *copy = NULL;
  CHECK_OK(panns_index_open_buffer(buf, len, PANNS_OPEN_VERIFY, &copy));
  memset(buf, 0, len); /* the library copied the bytes */
  CHECK(panns_index_len(copy) == n);
  uint32_t a[5], b[5];
  size_t ca = 0, cb = 0;
  CHECK_OK(panns_index_search(idx, rows, DIM, 5, 50, a, NULL, &ca));
  CHECK_OK(panns_index_search(copy, rows, DIM, 5, 50, b, NULL, &cb));
  CHECK(ca == 5 && cb == 5 && memcmp(a, b, sizeof a) == 0);
  PannsIndex *bad = (PannsIndex *)1;
  CHECK_ERR(panns_index_open_buffer(buf, len, 0, &bad), PANNS_CORRUPT, "");
  CHECK(bad == NULL);
  panns_index_free(copy);
  free(buf);

  CHECK(strcmp(panns_status_string(PANNS_OK), "ok") == 0);
  CHECK(strcmp(panns_status_string(PANNS_DIMENSION_MISMATCH), "dimension mismatch") == 0);
  CHECK(strcmp(panns_status_string(9999), "unknown status code") == 0);

  /* The per-call error belongs to the caller, whatever happens on this thread later. */
  char *err = NULL;
  CHECK(panns_index_search_e(idx, rows, DIM + 1, 5, 0, a, NULL, &ca, &err) == PANNS_DIMENSION_MISMATCH);
  CHECK_OK(panns_index_search(idx, rows, DIM, 5, 0, a, NULL, &ca));
  CHECK(err != NULL && strstr(err, "expected 16") != NULL);
  panns_error_free(err);
  err = (char *)"not touched";
  CHECK(panns_index_search_e(idx, rows, DIM, 5, 0, a, NULL, &ca, &err) == PANNS_OK && err == NULL);

  /* Datasets: the shape, then the vectors. */
  char *path = tmp_path("queries.fvecs");
  FILE *f = fopen(path, "wb");
  for (size_t i = 0; i < 7; i++) {
    int32_t d = DIM;
    fwrite(&d, sizeof d, 1, f);
    fwrite(rows + i * DIM, sizeof(float), DIM, f);
  }
  fclose(f);
  size_t pn = 0, pd = 0;
  CHECK_OK(panns_dataset_probe(path, NULL, &pn, &pd));
  CHECK(pn == 7 && pd == DIM);
  float *qs = malloc(7 * DIM * sizeof *qs);
  CHECK_ERR(panns_dataset_read(path, NULL, DIM, qs, 7 * DIM - 1, &pn, &pd), PANNS_BUFFER_TOO_SMALL, "7 x 16");
  CHECK_OK(panns_dataset_read(path, NULL, DIM, qs, 7 * DIM, &pn, &pd));
  CHECK(memcmp(qs, rows, 7 * DIM * sizeof *qs) == 0);
  CHECK_ERR(panns_dataset_read(path, NULL, DIM + 1, qs, 7 * DIM, NULL, NULL), PANNS_DIMENSION_MISMATCH, "17");
  unlink(path);
  free(qs);
  panns_index_free(idx);
  free(rows);
}

/* Many threads search one index at once and must get the single-threaded answers. */
enum { N_THREADS = 8, T_QUERIES = 64, T_K = 10, T_BUDGET = 200 };
struct search_job {
  const PannsIndex *idx;
  const float *queries;
  const uint32_t *expected;
  int mismatches;
};

static void *search_worker(void *arg) {
  struct search_job *job = arg;
  for (int rep = 0; rep < 5; rep++) {
    for (int q = 0; q < T_QUERIES; q++) {
      uint32_t ids[T_K];
      size_t count = 0;
      if (panns_index_search(job->idx, job->queries + q * DIM, DIM, T_K, T_BUDGET, ids, NULL, &count) != PANNS_OK ||
          count != T_K || memcmp(ids, job->expected + q * T_K, sizeof ids) != 0) {
        job->mismatches++;
      }
    }
    /* An error on this thread must not disturb the others. */
    uint32_t ids[T_K];
    size_t count;
    if (panns_index_search(job->idx, job->queries, DIM, 0, 0, ids, NULL, &count) != PANNS_INVALID_ARGUMENT) {
      job->mismatches++;
    }
  }
  return NULL;
}

static void test_threads(void) {
  const size_t n = 2000;
  float *rows = random_rows(n, DIM);
  PannsIndex *idx = build_index(rows, n, PANNS_EUCLIDEAN, 16);
  float *queries = random_rows(T_QUERIES, DIM);
  uint32_t *expected = malloc(T_QUERIES * T_K * sizeof *expected);
  size_t count;
  for (int q = 0; q < T_QUERIES; q++) {
    PannsSearchStats st;
    CHECK_OK(panns_index_search_with_stats(idx, queries + q * DIM, DIM, T_K, T_BUDGET, expected + q * T_K, NULL,
                                           &count, &st));
    CHECK(st.exact_scan == 0);
  }
  pthread_t threads[N_THREADS];
  struct search_job jobs[N_THREADS];
  for (int t = 0; t < N_THREADS; t++) {
    jobs[t] = (struct search_job){idx, queries, expected, 0};
    CHECK(pthread_create(&threads[t], NULL, search_worker, &jobs[t]) == 0);
  }
  int mismatches = 0;
  for (int t = 0; t < N_THREADS; t++) {
    pthread_join(threads[t], NULL);
    mismatches += jobs[t].mismatches;
  }
  CHECK(mismatches == 0);
  /* The batch search (on the library's own threads) agrees as well. */
  uint32_t *batch = malloc(T_QUERIES * T_K * sizeof *batch);
  CHECK_OK(panns_index_search_batch(idx, queries, T_QUERIES, DIM, T_K, T_BUDGET, batch, NULL));
  CHECK(memcmp(batch, expected, T_QUERIES * T_K * sizeof *batch) == 0);
  free(batch);
  free(expected);
  free(queries);
  panns_index_free(idx);
  free(rows);
}

/* The index written by Rust must give exactly the results Rust recorded. */
static void test_fixture(void) {
  const char *dir = getenv("PANNS_FIXTURE_DIR");
  if (!dir || !*dir) {
    printf("fixture: PANNS_FIXTURE_DIR is not set, skipped\n");
    return;
  }
  char path[1024];
  snprintf(path, sizeof path, "%s/meta.txt", dir);
  FILE *f = fopen(path, "r");
  CHECK(f != NULL);
  if (!f) return;
  long dim = 0, nq = 0, k = 0, budget = 0;
  char line[256], metric[64] = "";
  while (fgets(line, sizeof line, f)) {
    sscanf(line, "dim=%ld", &dim);
    sscanf(line, "n_queries=%ld", &nq);
    sscanf(line, "k=%ld", &k);
    sscanf(line, "budget=%ld", &budget);
    sscanf(line, "metric=%63s", metric);
  }
  fclose(f);
  CHECK(dim > 0 && nq > 0 && k > 0 && budget > 0);
  CHECK(strcmp(metric, "angular") == 0);
  size_t qlen = 0, ilen = 0, dlen = 0;
  snprintf(path, sizeof path, "%s/queries.f32", dir);
  float *queries = (float *)read_file(path, &qlen);
  snprintf(path, sizeof path, "%s/expected_ids.u32", dir);
  uint32_t *want_ids = (uint32_t *)read_file(path, &ilen);
  snprintf(path, sizeof path, "%s/expected_dist.f32", dir);
  float *want_ds = (float *)read_file(path, &dlen);
  CHECK(queries && qlen == (size_t)(nq * dim) * 4);
  CHECK(want_ids && ilen == (size_t)(nq * k) * 4);
  CHECK(want_ds && dlen == (size_t)(nq * k) * 4);
  snprintf(path, sizeof path, "%s/index.panns", dir);
  PannsIndex *idx = NULL;
  CHECK_OK(panns_index_open(path, PANNS_OPEN_VERIFY, &idx));
  if (idx && queries && want_ids && want_ds && qlen == (size_t)(nq * dim) * 4 &&
      ilen == (size_t)(nq * k) * 4 && dlen == (size_t)(nq * k) * 4) {
    CHECK(panns_index_dim(idx) == (uint32_t)dim);
    CHECK(panns_index_metric(idx) == PANNS_ANGULAR);
    uint32_t *ids = malloc((size_t)k * sizeof *ids);
    float *ds = malloc((size_t)k * sizeof *ds);
    int ids_equal = 1, dists_close = 1;
    for (long q = 0; q < nq; q++) {
      size_t count = 0;
      CHECK_OK(panns_index_search(idx, queries + q * dim, (size_t)dim, (size_t)k, (size_t)budget, ids, ds, &count));
      for (long i = 0; i < k; i++) {
        uint32_t id = (size_t)i < count ? ids[i] : UINT32_MAX;
        ids_equal &= id == want_ids[q * k + i];
        if ((size_t)i < count) dists_close &= fabsf(ds[i] - want_ds[q * k + i]) <= 1e-6f;
      }
    }
    CHECK(ids_equal);
    CHECK(dists_close);
    uint32_t *bids = malloc((size_t)(nq * k) * sizeof *bids);
    float *bds = malloc((size_t)(nq * k) * sizeof *bds);
    CHECK_OK(panns_index_search_batch(idx, queries, (size_t)nq, (size_t)dim, (size_t)k, (size_t)budget, bids, bds));
    CHECK(memcmp(bids, want_ids, (size_t)(nq * k) * sizeof *bids) == 0);
    int batch_close = 1;
    for (long i = 0; i < nq * k; i++) batch_close &= fabsf(bds[i] - want_ds[i]) <= 1e-6f;
    CHECK(batch_close);
    printf("fixture: %ld queries of %s matched\n", nq, dir);
    free(bids);
    free(bds);
    free(ids);
    free(ds);
  }
  panns_index_free(idx);
  free(queries);
  free(want_ids);
  free(want_ds);
}

static void remove_tmp_dir(void) {
  const char *names[] = {"index.panns", "copy.panns", "garbage.panns", "empty.panns", "truncated.panns",
                         "short-header.panns", "damaged.panns", "data.fvecs", "broken.fvecs", "data.f32",
                         "queries.fvecs", "dtype-f32.panns", "dtype-i8.panns"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) unlink(tmp_path(names[i]));
  rmdir(tmp_dir);
}

int main(void) {
  snprintf(tmp_dir, sizeof tmp_dir, "/tmp/panns-c-test-XXXXXX");
  if (!mkdtemp(tmp_dir)) {
    perror("mkdtemp");
    return 2;
  }
  printf("panns %s: C API tests\n", panns_version());
  test_version_and_defaults();
  test_builder_errors();
  test_search();
  test_recall();
  test_additions();
  test_angular_and_small_index();
  test_files();
  test_add_file();
  test_csv_options();
  test_error_messages();
  test_threads();
  test_dtype(); /* last of the random tests: its draws leave the others' data as it was */
  test_fixture();
  remove_tmp_dir();
  printf("%d passed, %d failed\n", n_passed, n_failed);
  return n_failed == 0 ? 0 : 1;
}
