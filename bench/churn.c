/* churn.c - thread generations handing blocks on (issue 14).
 *
 * --rounds R generations of --threads T threads.  Each generation is
 * created, does its work and is joined before the next one starts, so
 * every round retires T threads (and their heaps) and creates T new ones.
 * There are T hand-over slots of --handoff H blocks.  In round g, thread
 * i takes slot (i + g) % T (what some thread of round g-1 left there):
 *   1. checks and frees each of the H blocks handed to it with
 *      probability 1/2, so half of the blocks survive each round (a block lives 2 rounds on
 *      average, some for many; they pin the dead threads' memory);
 *   2. churns its own blocks: --ops allocations into --own slots, each
 *      replacing (checking and freeing) what the slot held, then frees
 *      all of them;
 *   3. refills the freed half of the slot with new blocks and leaves
 *      the H blocks for the next round's thread.
 * Sizes: bench_mix14_size (60% 16-256 B, 30% 512-4096 B, 9.5% 4-64 KiB,
 * 0.5% 64-512 KiB).
 * Every block is filled with a pattern derived from a unique id, and its
 * whole contents are checked when it is freed: a block handed out twice,
 * or written by the allocator, stops the program (exit 3).
 *
 * Prints bench_report_allocator's lines, then one line:
 *   churn threads=T rounds=R ... elapsed_s=S vmhwm_kb=K maxrss_kb=K ...
 * vmhwm_kb is /proc/self/status VmHWM (peak RSS), base_rss_kb VmRSS
 * before the first round, handoff_kb_max the most bytes handed on at the
 * end of a round (the live data that crosses generations).
 */
#include "bench_common.h"

#include <getopt.h>
#include <malloc.h>
#include <stdatomic.h>

static struct {
	unsigned threads, rounds;
	uint64_t handoff, own, ops, seed;
} cfg = { 8, 50, 1000, 200, 1000, 42 };

/* A block starts with its id and size; the rest is a byte pattern. */
typedef struct {
	uint64_t id;
	uint64_t size;
} blk_hdr_t;

typedef struct {
	void **p; /* H blocks, in the slot between two rounds */
} slot_t;

typedef struct {
	unsigned id, round;
	const char *stage; /* for the report of a damaged block */
	pthread_t tid;
	uint64_t ops, bytes_handed;
} worker_t;

static slot_t *slots;
static worker_t *workers;
static atomic_uint_fast64_t next_id = 1;

static inline uint8_t pattern(uint64_t id) { return (uint8_t)(id * 0x9E3779B97F4A7C15ULL >> 56) | 1; }

static void *blk_new(bench_rng_t *r, worker_t *w)
{
	uint32_t sz = bench_mix14_size(r);
	blk_hdr_t *b = malloc(sz);
	if (!b) bench_die("malloc(%u) returned NULL", sz);
	b->id = atomic_fetch_add_explicit(&next_id, 1, memory_order_relaxed);
	b->size = sz;
	memset(b + 1, pattern(b->id), sz - sizeof *b);
	w->ops++;
	return b;
}

/* The block must still hold what blk_new wrote: a block that was also
 * given to someone else has been overwritten by then. */
/* Where a damaged block was found and what it looks like: a run of
 * zero bytes from its start is what a page given back to the kernel
 * (MADV_DONTNEED) while the block was live leaves. */
static __attribute__((noreturn)) void blk_bad(const void *p, const worker_t *w, const char *what)
{
	const uint8_t *c = p;
	size_t us = malloc_usable_size((void *)p), z = 0;
	while (z < us && !c[z]) z++;
	fprintf(stderr, "churn: block %p, freed by round %u thread %u (%s), usable size %zu:"
		" %s; its first %zu bytes are zero\n", p, w->round, w->id, w->stage, us, what, z);
	exit(3);
}

static uint64_t blk_free(void *p, worker_t *w)
{
	blk_hdr_t *b = p;
	uint64_t sz = b->size;
	if (sz < 16 || sz > BENCH_MIX14_MAX)
		blk_bad(p, w, "header overwritten");
	/* Whole words, OR-ed together: the loop vectorises; the byte at
	 * fault is looked for only when something differs. */
	const uint8_t *c = (const uint8_t *)(b + 1);
	uint8_t v = pattern(b->id);
	uint64_t n = sz - sizeof *b, vv = v * 0x0101010101010101ULL, diff = 0, w8;
	for (uint64_t i = 0; i + 8 <= n; i += 8) {
		memcpy(&w8, c + i, 8);
		diff |= w8 ^ vv;
	}
	for (uint64_t i = n & ~7ULL; i < n; i++)
		diff |= c[i] ^ v;
	if (diff) {
		char what[160];
		uint64_t i = 0;
		while (i < n && c[i] == v) i++;
		snprintf(what, sizeof what, "id %" PRIu64 ", %" PRIu64 " B, byte %" PRIu64
			 " is 0x%02x, not 0x%02x (handed out twice?)", b->id, sz, i + sizeof *b,
			 i < n ? c[i] : 0, v);
		blk_bad(p, w, what);
	}
	free(p);
	w->ops++;
	return sz;
}

static void *work(void *arg)
{
	worker_t *w = arg;
	unsigned g = w->round;
	slot_t *s = &slots[(w->id + g) % cfg.threads];
	bench_rng_t rng;
	bench_rng_seed(&rng, cfg.seed, (uint64_t)g * 4096 + w->id);

	/* 1. free each block handed over with probability 1/2 */
	uint64_t h = cfg.handoff;
	w->stage = "handed over";
	for (uint64_t i = 0; i < h; i++) {
		if (s->p[i] && (bench_rng_next(&rng) >> 63)) {
			blk_free(s->p[i], w);
			s->p[i] = NULL;
		}
	}
	/* 2. the thread's own short-lived blocks */
	w->stage = "own";
	void **own = calloc(cfg.own, sizeof *own);
	if (!own) bench_die("calloc of %" PRIu64 " slots failed", cfg.own);
	for (uint64_t i = 0; i < cfg.ops; i++) {
		uint64_t k = bench_rng_range(&rng, 0, (uint32_t)cfg.own - 1);
		if (own[k]) blk_free(own[k], w);
		own[k] = blk_new(&rng, w);
	}
	for (uint64_t k = 0; k < cfg.own; k++)
		if (own[k]) blk_free(own[k], w);
	free(own);
	/* 3. hand H blocks on */
	uint64_t bytes = 0;
	for (uint64_t i = 0; i < h; i++) {
		if (!s->p[i]) s->p[i] = blk_new(&rng, w);
		bytes += ((blk_hdr_t *)s->p[i])->size;
	}
	w->bytes_handed = bytes;
	return NULL;
}

static void usage(FILE *f)
{
	fprintf(f,
"usage: churn [options]\n"
"  -t, --threads N   threads per generation (default 8)\n"
"  -r, --rounds N    generations, each created and joined (default 50)\n"
"  -H, --handoff N   blocks each thread hands to the next round (default 1000)\n"
"  -o, --own N       slots of a thread's own short-lived blocks (default 200)\n"
"  -n, --ops N       allocations into those slots per thread and round (default 1000)\n"
"  -S, --seed N      RNG seed (default 42)\n");
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "threads", required_argument, NULL, 't' },
		{ "rounds", required_argument, NULL, 'r' },
		{ "handoff", required_argument, NULL, 'H' },
		{ "own", required_argument, NULL, 'o' },
		{ "ops", required_argument, NULL, 'n' },
		{ "seed", required_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "t:r:H:o:n:S:h", lo, NULL)) != -1) {
		switch (c) {
		case 't': cfg.threads = (unsigned)bench_parse_u64("--threads", optarg); break;
		case 'r': cfg.rounds = (unsigned)bench_parse_u64("--rounds", optarg); break;
		case 'H': cfg.handoff = bench_parse_u64("--handoff", optarg); break;
		case 'o': cfg.own = bench_parse_u64("--own", optarg); break;
		case 'n': cfg.ops = bench_parse_u64("--ops", optarg); break;
		case 'S': cfg.seed = bench_parse_u64("--seed", optarg); break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) { usage(stderr); return 2; }
	if (cfg.threads < 1 || cfg.threads > 1024 || cfg.rounds < 1 || cfg.handoff < 1 ||
	    cfg.own < 1 || cfg.own > UINT32_MAX)
		bench_die("need --threads 1..1024, --rounds >= 1, --handoff >= 1, --own >= 1");

	bench_report_allocator(stdout);
	fflush(stdout);
	/* Book-keeping comes from mmap, not from the allocator under test. */
	slots = mmap(NULL, cfg.threads * sizeof *slots, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	workers = mmap(NULL, cfg.threads * sizeof *workers, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (slots == MAP_FAILED || workers == MAP_FAILED) bench_die("mmap failed");
	for (unsigned i = 0; i < cfg.threads; i++) {
		slots[i].p = mmap(NULL, cfg.handoff * sizeof(void *), PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (slots[i].p == MAP_FAILED) bench_die("mmap failed");
	}

	long base_rss = bench_status_kb("VmRSS");
	uint64_t ops = 0, handed_max = 0;
	uint64_t t0 = bench_now_ns();
	for (unsigned g = 0; g < cfg.rounds; g++) {
		for (unsigned i = 0; i < cfg.threads; i++) {
			workers[i] = (worker_t){ .id = i, .round = g };
			int e = pthread_create(&workers[i].tid, NULL, work, &workers[i]);
			if (e) bench_die("pthread_create: %s", strerror(e));
		}
		uint64_t handed = 0;
		for (unsigned i = 0; i < cfg.threads; i++) {
			pthread_join(workers[i].tid, NULL);
			ops += workers[i].ops;
			handed += workers[i].bytes_handed;
		}
		if (handed > handed_max) handed_max = handed;
	}
	double elapsed = (double)(bench_now_ns() - t0) / 1e9;
	bench_usage_t u = bench_usage();
	long end_rss = u.vmrss_kb;

	/* The last round's blocks are checked too. */
	worker_t last = { .round = cfg.rounds, .stage = "the last round's, in main" };
	for (unsigned i = 0; i < cfg.threads; i++)
		for (uint64_t k = 0; k < cfg.handoff; k++)
			blk_free(slots[i].p[k], &last);
	printf("churn threads=%u rounds=%u handoff=%" PRIu64 " own=%" PRIu64 " ops=%" PRIu64
	       " elapsed_s=%.3f vmhwm_kb=%ld maxrss_kb=%ld base_rss_kb=%ld end_rss_kb=%ld"
	       " handoff_kb_max=%" PRIu64 " allocs_frees=%" PRIu64 " minflt=%ld\n",
	       cfg.threads, cfg.rounds, cfg.handoff, cfg.own, cfg.ops, elapsed, u.vmhwm_kb,
	       u.maxrss_kb, base_rss, end_rss, handed_max / 1024, ops + last.ops, u.minflt);
	return 0;
}
