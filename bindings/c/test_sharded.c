/*
 * Tests of the sharded-index C API (panns_sharded_*): shards built and saved from C, a
 * manifest written, the merged search compared with an independent merge of each shard
 * searched on its own (panns_index_search) and with brute force, batch search and its
 * padding, range search against the exact ball and filtered batches against one filtered
 * search per row (panns_sharded_range_search, panns_sharded_search_batch_filtered),
 * refusals of mismatched, replaced and missing shards, NULL arguments, and the `_e` twins.
 *
 * The last line printed is "N passed, N failed"; the exit status is non-zero on failure.
 */
#define _GNU_SOURCE
#include <panns.h>

#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"

#define DIM 12
#define SHARDS 4
#define PER 400 /* rows per shard */
#define N (SHARDS * PER)
#define K 10

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;
static float uniform(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return (float)((double)(rng_state >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static char tmp_dir[64];
static char *tmp_path(const char *name) {
  static char buf[8][256];
  static int next;
  char *p = buf[next++ % 8];
  snprintf(p, 256, "%s/%s", tmp_dir, name);
  return p;
}

static void save_shard(const float *rows, size_t n, size_t dim, uint32_t metric, uint64_t seed,
                       const char *path) {
  PannsBuilder *b = NULL;
  PannsIndex *idx = NULL;
  PannsBuildOptions o = panns_build_options_default();
  CHECK_OK(panns_builder_new((uint32_t)dim, metric, &b));
  CHECK_OK(panns_builder_add_batch(b, rows, n, dim));
  o.n_trees = 8;
  o.seed = seed;
  CHECK_OK(panns_builder_build(b, &o, &idx));
  CHECK_OK(panns_index_save(idx, path));
  panns_builder_free(b);
  panns_index_free(idx);
}

typedef struct {
  uint64_t label;
  float distance;
} Hit;

static int cmp_hit(const void *a, const void *b) {
  const Hit *x = a, *y = b;
  if (x->distance != y->distance) return x->distance < y->distance ? -1 : 1;
  return x->label < y->label ? -1 : x->label > y->label;
}

static float data[N * DIM];
static const char *shard_names[SHARDS] = {"s0.panns", "s1.panns", "s2.panns", "s3.panns"};

/* The merge computed here: every shard opened and searched on its own, ids + row offsets. */
static size_t independent_merge(const float *q, size_t budget, Hit *out) {
  Hit all[SHARDS * K];
  size_t n = 0;
  for (int s = 0; s < SHARDS; s++) {
    PannsIndex *idx = NULL;
    uint32_t ids[K];
    float ds[K];
    size_t count = 0;
    CHECK_OK(panns_index_open(tmp_path(shard_names[s]), 0, &idx));
    CHECK_OK(panns_index_search(idx, q, DIM, K, budget, ids, ds, &count));
    for (size_t i = 0; i < count; i++) {
      all[n].label = (uint64_t)s * PER + ids[i];
      all[n].distance = ds[i];
      n++;
    }
    panns_index_free(idx);
  }
  qsort(all, n, sizeof all[0], cmp_hit);
  if (n > K) n = K;
  memcpy(out, all, n * sizeof all[0]);
  return n;
}

static void test_merge_and_exact(void) {
  const char *paths[SHARDS];
  PannsShardedIndex *sx = NULL;
  for (int s = 0; s < SHARDS; s++) {
    save_shard(data + (size_t)s * PER * DIM, PER, DIM, PANNS_EUCLIDEAN, 42, tmp_path(shard_names[s]));
    paths[s] = tmp_path(shard_names[s]);
  }
  for (int s = 0; s < SHARDS; s++) paths[s] = strdup(tmp_path(shard_names[s]));
  CHECK_OK(panns_sharded_write_manifest(tmp_path("m.shards"), paths, SHARDS));
  CHECK_OK(panns_sharded_open(tmp_path("m.shards"), PANNS_OPEN_VERIFY, &sx));
  CHECK(panns_sharded_len(sx) == N);
  CHECK(panns_sharded_dim(sx) == DIM);
  CHECK(panns_sharded_metric(sx) == PANNS_EUCLIDEAN);
  CHECK(panns_sharded_n_shards(sx) == SHARDS);

  int same = 1, exact_ok = 1, approx_differs = 0;
  float queries[20 * DIM];
  for (size_t i = 0; i < 20 * DIM; i++) queries[i] = uniform();
  for (int r = 0; r < 20; r++) {
    const float *q = queries + r * DIM;
    uint64_t labels[K];
    float ds[K];
    size_t count = 0;
    Hit want[K], exact[N];
    /* Budget 30, far below half of a shard (200): the trees are walked. */
    CHECK_OK(panns_sharded_search(sx, q, DIM, K, 30, labels, ds, &count));
    size_t n = independent_merge(q, 30, want);
    same &= count == n;
    for (size_t i = 0; i < n && i < count; i++) same &= labels[i] == want[i].label && ds[i] == want[i].distance;
    /* Brute force over all rows; budget 200 makes every shard scan exactly. */
    for (size_t i = 0; i < N; i++) {
      double s2 = 0;
      for (int j = 0; j < DIM; j++) s2 += ((double)q[j] - data[i * DIM + j]) * ((double)q[j] - data[i * DIM + j]);
      exact[i].label = i;
      exact[i].distance = (float)sqrt(s2);
    }
    qsort(exact, N, sizeof exact[0], cmp_hit);
    for (size_t i = 0; i < K; i++) approx_differs |= labels[i] != exact[i].label;
    CHECK_OK(panns_sharded_search(sx, q, DIM, K, PER / 2, labels, ds, &count));
    for (size_t i = 0; i < K; i++)
      exact_ok &= labels[i] == exact[i].label && fabsf(ds[i] - exact[i].distance) < 1e-4f;
  }
  CHECK(same);
  CHECK(exact_ok);
  CHECK(approx_differs); /* the approximate path is really approximate somewhere */

  /* Batch == single, and rows of a too-small answer are padded. */
  {
    uint64_t bl[20 * K], one[K];
    float bd[20 * K], od[K];
    size_t count;
    int eq = 1;
    CHECK_OK(panns_sharded_search_batch(sx, queries, 20, DIM, K, 30, bl, bd));
    for (int r = 0; r < 20; r++) {
      CHECK_OK(panns_sharded_search(sx, queries + r * DIM, DIM, K, 30, one, od, &count));
      for (int i = 0; i < K; i++) eq &= bl[r * K + i] == one[i] && bd[r * K + i] == od[i];
    }
    CHECK(eq);
    CHECK_OK(panns_sharded_search_batch(sx, queries, 0, DIM, K, 0, bl, NULL));
    queries[DIM + 3] = NAN;
    CHECK_ERR(panns_sharded_search_batch(sx, queries, 2, DIM, K, 0, bl, bd), PANNS_NON_FINITE, "query row 1");
    queries[DIM + 3] = 0.5f;
  }

  /* Two "servers" holding disjoint subsets; their answers merged here equal the whole. */
  {
    PannsShardedIndex *a = NULL, *b = NULL;
    const size_t sa[2] = {0, 2}, sb[2] = {3, 1}, bad[2] = {1, 1};
    uint64_t la[K], lb[K], lw[K];
    float da[K], db[K], dw[K];
    size_t na = 0, nb = 0, nw = 0;
    Hit all[2 * K];
    int eq = 1;
    CHECK_OK(panns_sharded_open_subset(tmp_path("m.shards"), sa, 2, 0, &a));
    CHECK_OK(panns_sharded_open_subset(tmp_path("m.shards"), sb, 2, 0, &b));
    CHECK(panns_sharded_len(a) == 2 * PER && panns_sharded_n_shards(b) == 2);
    for (int r = 0; r < 20; r++) {
      const float *q = queries + r * DIM;
      CHECK_OK(panns_sharded_search(a, q, DIM, K, 30, la, da, &na));
      CHECK_OK(panns_sharded_search(b, q, DIM, K, 30, lb, db, &nb));
      CHECK_OK(panns_sharded_search(sx, q, DIM, K, 30, lw, dw, &nw));
      for (size_t i = 0; i < na; i++) all[i] = (Hit){la[i], da[i]};
      for (size_t i = 0; i < nb; i++) all[na + i] = (Hit){lb[i], db[i]};
      qsort(all, na + nb, sizeof all[0], cmp_hit);
      for (size_t i = 0; i < nw; i++) eq &= all[i].label == lw[i] && all[i].distance == dw[i];
    }
    CHECK(eq);
    panns_sharded_free(a);
    CHECK_ERR(panns_sharded_open_subset(tmp_path("m.shards"), bad, 2, 0, &a), PANNS_INVALID_ARGUMENT, "twice");
    CHECK(a == NULL);
    panns_sharded_free(b);
  }

  /* Bad arguments. */
  {
    uint64_t l[K];
    size_t count;
    PannsShardedIndex *none = (PannsShardedIndex *)1;
    CHECK_ERR(panns_sharded_search(NULL, queries, DIM, K, 0, l, NULL, &count), PANNS_NULL_POINTER, "index");
    CHECK_ERR(panns_sharded_search(sx, queries, DIM - 1, K, 0, l, NULL, &count), PANNS_DIMENSION_MISMATCH, "dimension");
    CHECK_ERR(panns_sharded_search(sx, queries, DIM, 0, 0, l, NULL, &count), PANNS_INVALID_ARGUMENT, "k");
    CHECK_ERR(panns_sharded_search(sx, queries, DIM, K, 0, NULL, NULL, &count), PANNS_NULL_POINTER, "out_labels");
    CHECK_ERR(panns_sharded_open(NULL, 0, &none), PANNS_NULL_POINTER, "manifest_path");
    CHECK(none == NULL);
    none = (PannsShardedIndex *)1;
    CHECK_ERR(panns_sharded_open(tmp_path("m.shards"), 8, &none), PANNS_INVALID_ARGUMENT, "flag");
    CHECK(none == NULL);
    CHECK_ERR(panns_sharded_write_manifest(tmp_path("m2.shards"), paths, 0), PANNS_INVALID_ARGUMENT, "at least one shard");
    CHECK(panns_sharded_len(NULL) == 0 && panns_sharded_metric(NULL) == UINT32_MAX);
    panns_sharded_free(NULL);
  }
  panns_sharded_free(sx);
  for (int s = 0; s < SHARDS; s++) free((void *)paths[s]);
}

/* Exact distances from q to every row, sorted by (distance, label). */
static void brute_force(const float *q, Hit *out) {
  for (size_t i = 0; i < N; i++) {
    double s2 = 0;
    for (int j = 0; j < DIM; j++) s2 += ((double)q[j] - data[i * DIM + j]) * ((double)q[j] - data[i * DIM + j]);
    out[i].label = i;
    out[i].distance = (float)sqrt(s2);
  }
  qsort(out, N, sizeof out[0], cmp_hit);
}

static int odd_label(uint64_t label, void *user_data) {
  (void)user_data;
  return (int)(label % 2);
}

static int refuse_all(uint64_t label, void *user_data) {
  (void)label;
  (void)user_data;
  return -1;
}

/* Range search over the shards against the exact ball (every shard scans exactly at a
 * budget of half a shard), with no filter, an allow-list and a predicate; the cap and its
 * flag; the filtered batch against one filtered search per row; bad arguments. */
static void test_range_and_filtered_batch(void) {
  PannsShardedIndex *sx = NULL;
  static uint64_t odd[N / 2];
  static Hit exact[N], odd_exact[N / 2];
  PannsLabelFilter allow_odd = {0}, pred = {0}, abort_f = {0}, empty = {0};
  float queries[20 * DIM];
  int ball_ok = 1, cap_ok = 1, filtered_ok = 1;
  for (size_t i = 0; i < N / 2; i++) odd[i] = 2 * i + 1;
  allow_odd.kind = PANNS_LABEL_FILTER_ALLOW_LABELS;
  allow_odd.labels = odd;
  allow_odd.n_labels = N / 2;
  pred.kind = PANNS_LABEL_FILTER_PREDICATE;
  pred.predicate = odd_label;
  abort_f.kind = PANNS_LABEL_FILTER_PREDICATE;
  abort_f.predicate = refuse_all;
  empty.kind = PANNS_LABEL_FILTER_ALLOW_LABELS;
  for (size_t i = 0; i < 20 * DIM; i++) queries[i] = uniform();
  CHECK_OK(panns_sharded_open(tmp_path("m.shards"), 0, &sx));
  for (int r = 0; r < 5; r++) {
    const float *q = queries + r * DIM;
    uint64_t labels[1000];
    float ds[1000];
    size_t count = 0, n_odd = 0;
    uint8_t truncated = 9;
    const PannsLabelFilter *filters[2];
    float radius;
    brute_force(q, exact);
    radius = (exact[24].distance + exact[25].distance) / 2;
    CHECK_OK(panns_sharded_range_search(sx, q, DIM, radius, 1000, PER / 2, NULL, labels, ds, &count, &truncated));
    ball_ok &= count == 25 && truncated == 0;
    for (size_t i = 0; i < count && i < 25; i++) ball_ok &= labels[i] == exact[i].label && ds[i] <= radius;
    CHECK_OK(panns_sharded_range_search(sx, q, DIM, radius, 10, PER / 2, NULL, labels, ds, &count, &truncated));
    cap_ok &= count == 10 && truncated == 1;
    for (size_t i = 0; i < count; i++) cap_ok &= labels[i] == exact[i].label;
    CHECK_OK(panns_sharded_range_search(sx, q, DIM, radius, 25, PER / 2, NULL, labels, NULL, &count, &truncated));
    cap_ok &= count == 25 && truncated == 0;
    /* Odd labels only: the allow-list and the predicate give the exact filtered ball. */
    for (size_t i = 0; i < N; i++)
      if (exact[i].label % 2) odd_exact[n_odd++] = exact[i];
    radius = (odd_exact[14].distance + odd_exact[15].distance) / 2;
    filters[0] = &allow_odd;
    filters[1] = &pred;
    for (int f = 0; f < 2; f++) {
      CHECK_OK(panns_sharded_range_search(sx, q, DIM, radius, 1000, PER / 2, filters[f], labels, ds, &count, &truncated));
      filtered_ok &= count == 15 && truncated == 0;
      for (size_t i = 0; i < count && i < 15; i++) filtered_ok &= labels[i] == odd_exact[i].label;
    }
  }
  CHECK(ball_ok);
  CHECK(cap_ok);
  CHECK(filtered_ok);

  /* The filtered batch equals one filtered search per row; short rows are padded. */
  {
    uint64_t bl[20 * K], one[K], listed[40];
    float bd[20 * K], od[K];
    size_t counts[20], count;
    int eq = 1, padded = 1;
    PannsLabelFilter list = {0};
    for (size_t i = 0; i < 40; i++) listed[i] = 37 * i;
    list.kind = PANNS_LABEL_FILTER_ALLOW_LABELS;
    list.labels = listed;
    list.n_labels = 40;
    CHECK_OK(panns_sharded_search_batch_filtered(sx, queries, 20, DIM, K, 30, &list, bl, bd, counts));
    for (int r = 0; r < 20; r++) {
      CHECK_OK(panns_sharded_search_filtered(sx, queries + r * DIM, DIM, K, 30, &list, one, od, &count));
      eq &= counts[r] == count;
      for (size_t i = 0; i < count; i++) eq &= bl[r * K + i] == one[i] && bd[r * K + i] == od[i];
    }
    CHECK(eq);
    CHECK_OK(panns_sharded_search_batch_filtered(sx, queries, 20, DIM, K, 30, &pred, bl, NULL, counts));
    for (int r = 0; r < 20; r++) {
      CHECK_OK(panns_sharded_search_filtered(sx, queries + r * DIM, DIM, K, 30, &pred, one, NULL, &count));
      eq &= counts[r] == count && count == K;
      for (size_t i = 0; i < count; i++) eq &= bl[r * K + i] == one[i] && bl[r * K + i] % 2 == 1;
    }
    CHECK(eq);
    CHECK_OK(panns_sharded_search_batch_filtered(sx, queries, 20, DIM, K, 30, &empty, bl, bd, counts));
    for (int r = 0; r < 20; r++) padded &= counts[r] == 0 && bl[r * K] == UINT64_MAX && isinf(bd[r * K]);
    CHECK(padded);
    CHECK_OK(panns_sharded_search_batch_filtered(sx, queries, 0, DIM, K, 0, &list, bl, NULL, NULL));
    queries[2 * DIM + 1] = NAN;
    CHECK_ERR(panns_sharded_search_batch_filtered(sx, queries, 3, DIM, K, 0, &list, bl, bd, counts), PANNS_NON_FINITE,
              "query row 2");
    queries[2 * DIM + 1] = 0.25f;
    CHECK_ERR(panns_sharded_search_batch_filtered(sx, queries, 3, DIM, K, 50, &abort_f, bl, bd, counts),
              PANNS_CALLBACK_FAILED, "returned -1");
    CHECK_ERR(panns_sharded_search_batch_filtered(sx, queries, 3, DIM - 2, K, 0, &list, bl, bd, counts),
              PANNS_DIMENSION_MISMATCH, "dimension");
    CHECK_ERR(panns_sharded_search_batch_filtered(sx, queries, 3, DIM, 0, 0, &list, bl, bd, counts),
              PANNS_INVALID_ARGUMENT, "k");
    CHECK_ERR(panns_sharded_search_batch_filtered(sx, queries, 3, DIM, K, 0, &list, NULL, bd, counts),
              PANNS_NULL_POINTER, "out_labels");
  }

  /* Bad arguments of the range search, and its `_e` twin. */
  {
    uint64_t l[8];
    size_t count;
    char *err = NULL;
    PannsLabelFilter unknown = {0};
    unknown.kind = 17;
    CHECK_ERR(panns_sharded_range_search(sx, queries, DIM, -1.0f, 8, 0, NULL, l, NULL, &count, NULL),
              PANNS_INVALID_ARGUMENT, "radius");
    CHECK_ERR(panns_sharded_range_search(sx, queries, DIM, NAN, 8, 0, NULL, l, NULL, &count, NULL),
              PANNS_INVALID_ARGUMENT, "radius");
    CHECK_ERR(panns_sharded_range_search(sx, queries, DIM, 1.0f, 0, 0, NULL, l, NULL, &count, NULL),
              PANNS_INVALID_ARGUMENT, "max_results");
    CHECK_ERR(panns_sharded_range_search(sx, queries, DIM + 1, 1.0f, 8, 0, NULL, l, NULL, &count, NULL),
              PANNS_DIMENSION_MISMATCH, "dimension");
    CHECK_ERR(panns_sharded_range_search(sx, queries, DIM, 1.0f, 8, 0, &unknown, l, NULL, &count, NULL),
              PANNS_INVALID_ARGUMENT, "kind 17");
    CHECK_ERR(panns_sharded_range_search(sx, queries, DIM, 100.0f, 8, 50, &abort_f, l, NULL, &count, NULL),
              PANNS_CALLBACK_FAILED, "returned -1");
    CHECK_ERR(panns_sharded_range_search(NULL, queries, DIM, 1.0f, 8, 0, NULL, l, NULL, &count, NULL),
              PANNS_NULL_POINTER, "index");
    CHECK_OK(panns_sharded_range_search(sx, queries, DIM, 100.0f, 8, 0, &empty, l, NULL, &count, NULL));
    CHECK(count == 0);
    CHECK(panns_sharded_range_search_e(sx, queries, DIM, -2.0f, 8, 0, NULL, l, NULL, &count, NULL, &err) ==
          PANNS_INVALID_ARGUMENT);
    CHECK(err != NULL && contains_nocase(err, "radius"));
    panns_error_free(err);
  }
  panns_sharded_free(sx);
}

static void test_refusals(void) {
  PannsShardedIndex *sx = NULL;
  char *err = NULL;
  const char *paths[2];
  float other[PER * (DIM + 1)];
  for (size_t i = 0; i < sizeof other / sizeof other[0]; i++) other[i] = uniform();
  /* Shards that disagree on the dimension or metric. */
  save_shard(other, PER, DIM + 1, PANNS_EUCLIDEAN, 1, tmp_path("dim.panns"));
  save_shard(other, PER, DIM, PANNS_ANGULAR, 1, tmp_path("ang.panns"));
  paths[0] = tmp_path(shard_names[0]);
  paths[1] = tmp_path("dim.panns");
  CHECK_ERR(panns_sharded_write_manifest(tmp_path("bad.shards"), paths, 2), PANNS_CORRUPT, "shard 1");
  paths[1] = tmp_path("ang.panns");
  CHECK_ERR(panns_sharded_write_manifest(tmp_path("bad.shards"), paths, 2), PANNS_CORRUPT, "metric angular");

  /* A shard replaced by another index of the same shape: the checksum differs. */
  save_shard(other, PER, DIM, PANNS_EUCLIDEAN, 7, tmp_path(shard_names[2]));
  CHECK_ERR(panns_sharded_open(tmp_path("m.shards"), 0, &sx), PANNS_CORRUPT, "s2.panns");
  CHECK(contains_nocase(panns_last_error_message(), "shard 2"));
  CHECK(contains_nocase(panns_last_error_message(), "replaced"));
  CHECK(sx == NULL);
  /* The `_e` twin hands this call's message to the caller. */
  CHECK(panns_sharded_open_e(tmp_path("m.shards"), 0, &sx, &err) == PANNS_CORRUPT);
  CHECK(err != NULL && contains_nocase(err, "checksum"));
  panns_error_free(err);
  /* Missing. */
  unlink(tmp_path(shard_names[2]));
  CHECK_ERR(panns_sharded_open(tmp_path("m.shards"), 0, &sx), PANNS_IO, "s2.panns");
  /* Not a manifest. */
  CHECK_ERR(panns_sharded_open(tmp_path(shard_names[0]), 0, &sx), PANNS_CORRUPT, "not a panns shard manifest");
}

int main(void) {
  const char *names[] = {"s0.panns", "s1.panns", "s2.panns", "s3.panns", "m.shards", "dim.panns", "ang.panns"};
  snprintf(tmp_dir, sizeof tmp_dir, "/tmp/panns-c-shard-XXXXXX");
  if (!mkdtemp(tmp_dir)) {
    perror("mkdtemp");
    return 2;
  }
  for (size_t i = 0; i < N * DIM; i++) data[i] = uniform();
  printf("panns %s: sharded C API tests\n", panns_version());
  test_merge_and_exact();
  test_range_and_filtered_batch();
  test_refusals();
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) unlink(tmp_path(names[i]));
  rmdir(tmp_dir);
  printf("%d passed, %d failed\n", n_passed, n_failed);
  return n_failed == 0 ? 0 : 1;
}
