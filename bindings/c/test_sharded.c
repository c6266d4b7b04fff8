/*
 * Tests of the sharded-index C API (panns_sharded_*): shards built and saved from C, a
 * manifest written, the merged search compared with an independent merge of each shard
 * searched on its own (panns_index_search) and with brute force, batch search and its
 * padding, refusals of mismatched, replaced and missing shards, NULL arguments, and the
 * `_e` twins.
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
  test_refusals();
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) unlink(tmp_path(names[i]));
  rmdir(tmp_dir);
  printf("%d passed, %d failed\n", n_passed, n_failed);
  return n_failed == 0 ? 0 : 1;
}
