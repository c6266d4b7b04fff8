/*
 * Tests of filtered search, filtered batch search and range search from C
 * (panns_index_search_filtered, panns_index_search_batch_filtered, panns_index_range_search),
 * checked against an exact scan over the allowed items computed here, and of prepared
 * allow-lists (panns_allow_list_new, PANNS_FILTER_ALLOW_LIST) against the filters they came from.
 *
 * The last line printed is "N passed, N failed"; the exit status is non-zero on failure.
 */
#include <panns.h>

#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

#define DIM 12
#define N 4000
#define K 10

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;
static float uniform(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return (float)((double)(rng_state >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static float l2(const float *a, const float *b) {
  double s = 0;
  int i;
  for (i = 0; i < DIM; i++) s += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
  return (float)sqrt(s);
}

static float *rows;
static unsigned char allowed[N];

/* The exact k nearest allowed items of q, by a scan: writes ids, returns the count. */
static size_t exact(const float *q, size_t k, uint32_t *ids) {
  float best[64];
  size_t n = 0, i, j;
  for (i = 0; i < N; i++) {
    float d;
    if (!allowed[i]) continue;
    d = l2(q, rows + i * DIM);
    if (n == k && d >= best[k - 1]) continue;
    j = n < k ? n++ : k - 1;
    while (j > 0 && best[j - 1] > d) {
      best[j] = best[j - 1];
      ids[j] = ids[j - 1];
      j--;
    }
    best[j] = d;
    ids[j] = (uint32_t)i;
  }
  return n;
}

/* The predicate of the tests: user_data is the allowed[] array. */
static int allow_cb(uint64_t id, void *user_data) { return ((const unsigned char *)user_data)[id] ? 1 : 0; }

/* Aborts (returns -3) at the `*(int *)user_data`-th call; counts calls in the int after it. */
static int abort_cb(uint64_t id, void *user_data) {
  int *s = user_data;
  (void)id;
  s[1]++;
  return s[1] >= s[0] ? -3 : 1;
}

static void set_every(size_t stride, size_t offset) {
  size_t i;
  for (i = 0; i < N; i++) allowed[i] = (unsigned char)(i % stride == offset);
}

static void make_bitmap(uint64_t *words, int deny) {
  size_t i;
  memset(words, 0, (N + 63) / 64 * sizeof *words);
  for (i = 0; i < N; i++)
    if (!allowed[i] != !deny) words[i / 64] |= (uint64_t)1 << (i % 64);
}

static void test_kinds_agree_and_match_exact(PannsIndex *idx, int graph) {
  uint64_t bits[(N + 63) / 64], deny_bits[(N + 63) / 64];
  uint32_t *list = malloc(N * sizeof *list), *unlisted = malloc(N * sizeof *unlisted);
  size_t n_list = 0, n_unlisted = 0, i, qi, hits = 0, total = 0;
  PannsFilter f[5];
  /* The approximate path: 2 * budget < allowed, and with the graph allowed^2 > 16 budget n
   * (graph: 50%, 2000 items, beam 40; forest: 25%, 1000 items, 400 candidates). */
  size_t budget = graph ? 40 : 400;
  set_every(graph ? 2 : 4, graph ? 1 : 2);
  make_bitmap(bits, 0);
  make_bitmap(deny_bits, 1);
  for (i = 0; i < N; i++) {
    if (allowed[i]) list[n_list++] = (uint32_t)i;
    else unlisted[n_unlisted++] = (uint32_t)i;
  }
  memset(f, 0, sizeof f);
  f[0].kind = PANNS_FILTER_ALLOW_BITMAP, f[0].bits = bits, f[0].n_bits = N;
  f[1].kind = PANNS_FILTER_DENY_BITMAP, f[1].bits = deny_bits, f[1].n_bits = N;
  f[2].kind = PANNS_FILTER_ALLOW_IDS, f[2].ids = list, f[2].n_ids = n_list;
  f[3].kind = PANNS_FILTER_DENY_IDS, f[3].ids = unlisted, f[3].n_ids = n_unlisted;
  f[4].kind = PANNS_FILTER_PREDICATE, f[4].predicate = allow_cb, f[4].user_data = allowed;
  for (qi = 0; qi < 40; qi++) {
    float q[DIM];
    uint32_t ids[K], other[K], truth[K];
    float ds[K];
    size_t n = 0, m = 0, j, t;
    PannsSearchStats st;
    int all_allowed = 1, same = 1, d_ok = 1;
    for (j = 0; j < DIM; j++) q[j] = uniform();
    CHECK_OK(panns_index_search_filtered(idx, q, DIM, K, budget, &f[0], ids, ds, &n, &st));
    CHECK(n == K && st.exact_scan == 0);
    for (j = 0; j < n; j++) {
      all_allowed &= allowed[ids[j]];
      d_ok &= fabsf(ds[j] - l2(q, rows + (size_t)ids[j] * DIM)) < 1e-4f;
    }
    CHECK(all_allowed && d_ok);
    for (t = 1; t < 5; t++) {
      CHECK_OK(panns_index_search_filtered(idx, q, DIM, K, budget, &f[t], other, NULL, &m, NULL));
      same &= m == n && memcmp(other, ids, n * sizeof *ids) == 0;
    }
    CHECK(same);
    exact(q, K, truth);
    for (j = 0; j < n; j++)
      for (t = 0; t < K; t++) hits += ids[j] == truth[t];
    total += K;
  }
  printf("  %s: filtered recall@10 at %s selectivity = %.3f\n", graph ? "graph" : "forest", graph ? "50%" : "25%",
         (double)hits / (double)total);
  CHECK((double)hits / (double)total >= 0.95);
  free(list);
  free(unlisted);
}

static void test_exact_path_empty_and_errors(PannsIndex *idx) {
  uint64_t bits[(N + 63) / 64 + 1];
  uint32_t ids[K], truth[K], bad_ids[3] = {1, N + 5, 2};
  float q[DIM];
  size_t n = 99, j;
  PannsSearchStats st;
  PannsFilter f;
  int abort_state[2] = {4, 0};
  for (j = 0; j < DIM; j++) q[j] = uniform();
  /* 40 allowed items: the default budget covers half of them, an exact scan. */
  set_every(100, 7);
  make_bitmap(bits, 0);
  memset(&f, 0, sizeof f);
  f.kind = PANNS_FILTER_ALLOW_BITMAP, f.bits = bits, f.n_bits = N;
  CHECK_OK(panns_index_search_filtered(idx, q, DIM, K, 0, &f, ids, NULL, &n, &st));
  CHECK(st.exact_scan == 1 && st.scored == 40);
  CHECK(n == exact(q, K, truth) && memcmp(ids, truth, n * sizeof *ids) == 0);
  /* Empty filters: no results, no error. */
  memset(bits, 0, sizeof bits);
  CHECK_OK(panns_index_search_filtered(idx, q, DIM, K, 0, &f, ids, NULL, &n, NULL));
  CHECK(n == 0);
  f.kind = PANNS_FILTER_ALLOW_IDS, f.ids = NULL, f.n_ids = 0;
  n = 99;
  CHECK_OK(panns_index_search_filtered(idx, q, DIM, K, 0, &f, ids, NULL, &n, NULL));
  CHECK(n == 0);
  /* Wrong bitmap length, unknown ids, unknown kind, NULL predicate. */
  f.kind = PANNS_FILTER_ALLOW_BITMAP, f.bits = bits, f.n_bits = N - 1;
  CHECK_ERR(panns_index_search_filtered(idx, q, DIM, K, 0, &f, ids, NULL, &n, NULL), PANNS_INVALID_ARGUMENT,
            "holds 3999 bits, the index has 4000 items");
  f.n_bits = N + 64;
  CHECK_ERR(panns_index_search_filtered(idx, q, DIM, K, 0, &f, ids, NULL, &n, NULL), PANNS_INVALID_ARGUMENT,
            "n_bits must equal the item count");
  f.kind = PANNS_FILTER_ALLOW_IDS, f.ids = bad_ids, f.n_ids = 3;
  CHECK_ERR(panns_index_search_filtered(idx, q, DIM, K, 0, &f, ids, NULL, &n, NULL), PANNS_OUT_OF_RANGE,
            "filter id 4005 (ids[1])");
  f.kind = 77;
  CHECK_ERR(panns_index_search_filtered(idx, q, DIM, K, 0, &f, ids, NULL, &n, NULL), PANNS_INVALID_ARGUMENT,
            "filter kind 77");
  f.kind = PANNS_FILTER_PREDICATE, f.predicate = NULL;
  CHECK_ERR(panns_index_search_filtered(idx, q, DIM, K, 0, &f, ids, NULL, &n, NULL), PANNS_NULL_POINTER,
            "filter->predicate");
  /* A callback that aborts: a clear status, no call after the abort. */
  f.predicate = abort_cb, f.user_data = abort_state;
  CHECK_ERR(panns_index_search_filtered(idx, q, DIM, K, 64, &f, ids, NULL, &n, NULL), PANNS_CALLBACK_FAILED,
            "returned -3 for item");
  CHECK(abort_state[1] == 4);
  CHECK(strcmp(panns_status_string(PANNS_CALLBACK_FAILED), "filter callback failed") == 0);
  {
    char *err = NULL;
    abort_state[1] = 0;
    CHECK(panns_index_search_filtered_e(idx, q, DIM, K, 64, &f, ids, NULL, &n, NULL, &err) ==
          PANNS_CALLBACK_FAILED);
    CHECK(err != NULL && strstr(err, "search aborted") != NULL);
    panns_error_free(err);
  }
}

static void test_batch(PannsIndex *idx) {
  enum { NQ = 8 };
  float qs[NQ * DIM];
  uint32_t ids[NQ * K], one[K];
  float ds[NQ * K];
  size_t counts[NQ], n, i, r;
  PannsFilter f;
  uint32_t three[3] = {11, 2222, 3999};
  int same = 1, padded = 1;
  for (i = 0; i < NQ * DIM; i++) qs[i] = uniform();
  set_every(5, 0);
  memset(&f, 0, sizeof f);
  f.kind = PANNS_FILTER_PREDICATE, f.predicate = allow_cb, f.user_data = allowed;
  CHECK_OK(panns_index_search_batch_filtered(idx, qs, NQ, DIM, K, 100, &f, ids, ds, counts));
  for (r = 0; r < NQ; r++) {
    CHECK_OK(panns_index_search_filtered(idx, qs + r * DIM, DIM, K, 100, &f, one, NULL, &n, NULL));
    same &= n == counts[r] && memcmp(one, ids + r * K, n * sizeof *one) == 0;
  }
  CHECK(same);
  f.kind = PANNS_FILTER_ALLOW_IDS, f.ids = three, f.n_ids = 3;
  CHECK_OK(panns_index_search_batch_filtered(idx, qs, NQ, DIM, K, 0, &f, ids, ds, counts));
  for (r = 0; r < NQ; r++) {
    padded &= counts[r] == 3;
    for (i = 3; i < K; i++) padded &= ids[r * K + i] == UINT32_MAX && isinf(ds[r * K + i]);
  }
  CHECK(padded);
}

static void test_range(PannsIndex *idx) {
  float q[DIM], d40 = 0, ds[100];
  uint32_t ids[100], truth[41];
  size_t n, i, j;
  unsigned char truncated = 9;
  int inside = 1;
  for (j = 0; j < DIM; j++) q[j] = uniform();
  memset(allowed, 1, sizeof allowed);
  exact(q, 41, truth);
  d40 = (l2(q, rows + (size_t)truth[39] * DIM) + l2(q, rows + (size_t)truth[40] * DIM)) / 2;
  /* Exact (the budget covers half the items): exactly the 40 inside, not truncated. */
  CHECK_OK(panns_index_range_search(idx, q, DIM, d40, 100, N, NULL, ids, ds, &n, &truncated));
  CHECK(n == 40 && truncated == 0 && memcmp(ids, truth, 40 * sizeof *ids) == 0);
  /* The cap: the nearest 15, truncated. */
  CHECK_OK(panns_index_range_search(idx, q, DIM, d40, 15, N, NULL, ids, ds, &n, &truncated));
  CHECK(n == 15 && truncated == 1 && memcmp(ids, truth, 15 * sizeof *ids) == 0);
  /* Approximate: nothing outside the radius. */
  CHECK_OK(panns_index_range_search(idx, q, DIM, d40, 100, 0, NULL, ids, ds, &n, NULL));
  for (i = 0; i < n; i++) inside &= ds[i] <= d40;
  CHECK(n >= 36 && inside);
  CHECK_ERR(panns_index_range_search(idx, q, DIM, -0.5f, 10, 0, NULL, ids, ds, &n, NULL), PANNS_INVALID_ARGUMENT,
            "radius = -0.5");
  CHECK_ERR(panns_index_range_search(idx, q, DIM, (float)NAN, 10, 0, NULL, ids, ds, &n, NULL),
            PANNS_INVALID_ARGUMENT, "radius = NaN");
}

/* A prepared list of `from` for idx (checked to succeed). */
static PannsAllowList *prepare(PannsIndex *idx, const PannsFilter *from) {
  PannsAllowList *list = NULL;
  CHECK_OK(panns_allow_list_new(idx, from, &list));
  return list;
}

/* The prepared lists of a bitmap, its deny form and its deny ids give the bitmap's results and
 * stats in search, batch and range search, on the exact scan (40 items at the default budget)
 * and on the walk (graph: 50% at beam 40; forest: 25% at 400 candidates). */
static void test_allow_list_same_as_bitmap(PannsIndex *idx, int graph) {
  enum { NQ = 8, NL = 3 };
  uint64_t bits[(N + 63) / 64], deny_bits[(N + 63) / 64];
  uint32_t *unlisted = malloc(N * sizeof *unlisted);
  int plan;
  for (plan = 0; plan < 2; plan++) {
    size_t budget = plan == 0 ? 0 : (graph ? 40 : 400), n_allowed = 0, n_unlisted = 0, i, r, t;
    PannsFilter f, deny, deny_ids, lf;
    PannsAllowList *lists[NL];
    float qs[NQ * DIM];
    int same = 1, same_stats = 1, plan_ok = 1, same_batch = 1, same_range = 1, counts_ok = 1;
    if (plan == 0) set_every(100, 7);
    else set_every(graph ? 2 : 4, 1);
    make_bitmap(bits, 0);
    make_bitmap(deny_bits, 1);
    for (i = 0; i < N; i++) {
      if (allowed[i]) n_allowed++;
      else unlisted[n_unlisted++] = (uint32_t)i;
    }
    memset(&f, 0, sizeof f);
    f.kind = PANNS_FILTER_ALLOW_BITMAP, f.bits = bits, f.n_bits = N;
    memset(&deny, 0, sizeof deny);
    deny.kind = PANNS_FILTER_DENY_BITMAP, deny.bits = deny_bits, deny.n_bits = N;
    memset(&deny_ids, 0, sizeof deny_ids);
    deny_ids.kind = PANNS_FILTER_DENY_IDS, deny_ids.ids = unlisted, deny_ids.n_ids = n_unlisted;
    lists[0] = prepare(idx, &f);
    lists[1] = prepare(idx, &deny);
    lists[2] = prepare(idx, &deny_ids);
    for (t = 0; t < NL; t++) counts_ok &= panns_allow_list_len(lists[t]) == n_allowed && panns_allow_list_items(lists[t]) == N;
    CHECK(counts_ok);
    memset(&lf, 0, sizeof lf);
    lf.kind = PANNS_FILTER_ALLOW_LIST;
    for (i = 0; i < NQ * DIM; i++) qs[i] = uniform();
    for (r = 0; r < NQ; r++) {
      const float *q = qs + r * DIM;
      uint32_t ids[K], got[K], rids[K], rgot[K];
      float ds[K], gds[K], rds[K], rgds[K];
      size_t n = 0, m = 0, rn = 0, rm = 0;
      unsigned char tr = 9, tr2 = 9;
      PannsSearchStats st, st2;
      CHECK_OK(panns_index_search_filtered(idx, q, DIM, K, budget, &f, ids, ds, &n, &st));
      plan_ok &= st.exact_scan == (plan == 0 ? 1 : 0);
      CHECK_OK(panns_index_range_search(idx, q, DIM, ds[n / 2], K, budget, &f, rids, rds, &rn, &tr));
      for (t = 0; t < NL; t++) {
        lf.user_data = lists[t];
        CHECK_OK(panns_index_search_filtered(idx, q, DIM, K, budget, &lf, got, gds, &m, &st2));
        same &= m == n && memcmp(got, ids, n * sizeof *ids) == 0 && memcmp(gds, ds, n * sizeof *ds) == 0;
        same_stats &= st2.scored == st.scored && st2.budget == st.budget && st2.exact_scan == st.exact_scan;
        CHECK_OK(panns_index_range_search(idx, q, DIM, ds[n / 2], K, budget, &lf, rgot, rgds, &rm, &tr2));
        same_range &= rm == rn && tr2 == tr && memcmp(rgot, rids, rn * sizeof *rids) == 0 &&
                      memcmp(rgds, rds, rn * sizeof *rds) == 0;
      }
    }
    CHECK(plan_ok);
    CHECK(same);
    CHECK(same_stats);
    CHECK(same_range);
    {
      uint32_t ids[NQ * K], got[NQ * K];
      float ds[NQ * K], gds[NQ * K];
      size_t counts[NQ], gcounts[NQ];
      CHECK_OK(panns_index_search_batch_filtered(idx, qs, NQ, DIM, K, budget, &f, ids, ds, counts));
      for (t = 0; t < NL; t++) {
        lf.user_data = lists[t];
        CHECK_OK(panns_index_search_batch_filtered(idx, qs, NQ, DIM, K, budget, &lf, got, gds, gcounts));
        same_batch &= memcmp(got, ids, sizeof ids) == 0 && memcmp(gds, ds, sizeof ds) == 0 &&
                      memcmp(gcounts, counts, sizeof counts) == 0;
      }
      CHECK(same_batch);
    }
    printf("  %s, %s: prepared allow-lists of %lu items agree with the bitmap\n", graph ? "graph" : "forest",
           plan == 0 ? "exact scan" : "walk", (unsigned long)n_allowed);
    for (t = 0; t < NL; t++) panns_allow_list_free(lists[t]);
  }
  free(unlisted);
}

static void test_allow_list_errors(PannsIndex *idx) {
  PannsBuilder *b = NULL;
  PannsIndex *small = NULL;
  PannsAllowList *list = NULL, *foreign = NULL;
  PannsFilter f;
  float q[DIM];
  uint32_t ids[K];
  size_t n = 0, j;
  char *err = NULL;
  for (j = 0; j < DIM; j++) q[j] = uniform();
  memset(&f, 0, sizeof f);
  /* A predicate cannot be prepared; *out is NULL after a failure. */
  list = (PannsAllowList *)&f;
  f.kind = PANNS_FILTER_PREDICATE, f.predicate = allow_cb, f.user_data = allowed;
  CHECK_ERR(panns_allow_list_new(idx, &f, &list), PANNS_INVALID_ARGUMENT, "cannot be prepared");
  CHECK(list == NULL);
  CHECK(panns_allow_list_new_e(idx, &f, &list, &err) == PANNS_INVALID_ARGUMENT);
  CHECK(err != NULL && strstr(err, "PANNS_FILTER_PREDICATE") != NULL);
  panns_error_free(err);
  CHECK_ERR(panns_allow_list_new(NULL, NULL, &list), PANNS_NULL_POINTER, "index");
  CHECK_ERR(panns_allow_list_new(idx, NULL, NULL), PANNS_NULL_POINTER, "out");
  CHECK(panns_allow_list_len(NULL) == 0 && panns_allow_list_items(NULL) == 0);
  panns_allow_list_free(NULL);
  /* A NULL list, an unknown kind. */
  memset(&f, 0, sizeof f);
  f.kind = PANNS_FILTER_ALLOW_LIST;
  CHECK_ERR(panns_index_search_filtered(idx, q, DIM, K, 0, &f, ids, NULL, &n, NULL), PANNS_NULL_POINTER,
            "filter->user_data");
  f.kind = 7;
  CHECK_ERR(panns_index_search_filtered(idx, q, DIM, K, 0, &f, ids, NULL, &n, NULL), PANNS_INVALID_ARGUMENT,
            "PANNS_FILTER_ALLOW_LIST = 6");
  /* A list made for an index of 100 items: refused by a search of this one. */
  CHECK_OK(panns_builder_new(DIM, PANNS_EUCLIDEAN, &b));
  CHECK_OK(panns_builder_add_batch(b, rows, 100, DIM));
  CHECK_OK(panns_builder_build(b, NULL, &small));
  panns_builder_free(b);
  CHECK_OK(panns_allow_list_new(small, NULL, &foreign));
  CHECK(panns_allow_list_len(foreign) == 100 && panns_allow_list_items(foreign) == 100);
  panns_index_free(small);
  f.kind = PANNS_FILTER_ALLOW_LIST, f.user_data = foreign;
  CHECK_ERR(panns_index_search_filtered(idx, q, DIM, K, 0, &f, ids, NULL, &n, NULL), PANNS_INVALID_ARGUMENT,
            "made for an index of 100 items; this one has 4000");
  CHECK_ERR(panns_index_search_batch_filtered(idx, q, 1, DIM, K, 0, &f, ids, NULL, NULL), PANNS_INVALID_ARGUMENT,
            "made for an index of 100 items");
  CHECK_ERR(panns_index_range_search(idx, q, DIM, 1.0f, K, 0, &f, ids, NULL, &n, NULL), PANNS_INVALID_ARGUMENT,
            "made for an index of 100 items");
  panns_allow_list_free(foreign);
}

int main(void) {
  PannsBuilder *b = NULL;
  PannsIndex *idx = NULL;
  PannsBuildOptions o = panns_build_options_default();
  size_t i;
  int graph;
  rows = malloc((size_t)N * DIM * sizeof *rows);
  for (i = 0; i < (size_t)N * DIM; i++) rows[i] = uniform();
  printf("panns %s: filtered and range search from C\n", panns_version());
  for (graph = 0; graph < 2; graph++) {
    CHECK_OK(panns_builder_new(DIM, PANNS_EUCLIDEAN, &b));
    CHECK_OK(panns_builder_add_batch(b, rows, N, DIM));
    o.n_trees = 8;
    CHECK_OK(panns_builder_build(b, &o, &idx));
    panns_builder_free(b);
    if (graph) CHECK_OK(panns_index_build_graph(idx, 16, 0));
    test_kinds_agree_and_match_exact(idx, graph);
    test_allow_list_same_as_bitmap(idx, graph);
    if (graph) {
      test_allow_list_errors(idx);
      test_exact_path_empty_and_errors(idx);
      test_batch(idx);
      test_range(idx);
    }
    panns_index_free(idx);
  }
  free(rows);
  printf("%d passed, %d failed\n", n_passed, n_failed);
  return n_failed == 0 ? 0 : 1;
}
