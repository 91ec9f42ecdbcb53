/* frag.c - fragmentation: peak RSS against peak live bytes.
 *
 * One thread (or --threads N independent copies), N = --blocks:
 *   1. allocate N blocks, sizes from the ring mix (60% 16-256 B,
 *      30% 512-2048 B, 10% 4096-32768 B)
 *   2. free every other block (leaves holes between survivors)
 *   3. allocate N/2 blocks of different sizes (the mix scaled by 1.5 plus
 *      8 bytes, so most do not fit the holes' size classes) into the holes
 *   4. free a random half of all blocks, refill those slots with 16-128 B
 *   5. free everything except every 16th block (scattered survivors pin
 *      pages: what can the allocator give back?)
 * Every block is memset in full.  Live bytes are counted exactly (requested
 * sizes); VmRSS is read after each phase and VmHWM at the end.
 *   rss_ratio   = (VmHWM - base) / peak live bytes (1.0 would be perfect)
 *   final_ratio = (VmRSS after phase 5 - base) / live bytes after phase 5
 * where base is VmRSS before phase 1 (program, libraries, book-keeping).
 */
#include "bench_common.h"

#include <getopt.h>

static struct {
	unsigned threads;
	uint64_t blocks, seed;
} cfg = { 1, 100000, 42 };

typedef struct {
	unsigned id;
	pthread_t tid;
	void **p;
	uint32_t *sz;
	uint64_t live, live_peak, ops;
} fr_t;

static bench_barrier_t b_phase;
static long phase_rss[6];
static uint64_t phase_live[6];
static fr_t *all;

static void put(fr_t *f, uint64_t i, uint32_t sz)
{
	void *p = malloc(sz);
	if (!p) bench_die("malloc(%u) returned NULL", sz);
	memset(p, (int)(i & 0xff) | 1, sz);
	f->p[i] = p;
	f->sz[i] = sz;
	f->live += sz;
	if (f->live > f->live_peak) f->live_peak = f->live;
	f->ops++;
}

static void drop(fr_t *f, uint64_t i)
{
	if (!f->p[i]) return;
	free(f->p[i]);
	f->p[i] = NULL;
	f->live -= f->sz[i];
	f->sz[i] = 0;
	f->ops++;
}

/* All threads finish a phase; thread 0 then records RSS and live bytes. */
static void phase_end(fr_t *f, int ph)
{
	bench_barrier_wait(&b_phase);
	if (f->id == 0) {
		uint64_t live = 0;
		for (unsigned i = 0; i < cfg.threads; i++) live += all[i].live;
		phase_live[ph] = live;
		phase_rss[ph] = bench_status_kb("VmRSS");
	}
	bench_barrier_wait(&b_phase);
}

static void *run(void *arg)
{
	fr_t *f = arg;
	uint64_t n = cfg.blocks;
	bench_rng_t rng;
	bench_rng_seed(&rng, cfg.seed, f->id);
	phase_end(f, 0);
	for (uint64_t i = 0; i < n; i++)
		put(f, i, bench_ring_size(&rng, 0));
	phase_end(f, 1);
	for (uint64_t i = 0; i < n; i += 2)
		drop(f, i);
	phase_end(f, 2);
	for (uint64_t i = 0; i < n; i += 2)
		put(f, i, bench_ring_size(&rng, 0) * 3 / 2 + 8);
	phase_end(f, 3);
	for (uint64_t i = 0; i < n; i++) {
		if (bench_rng_next(&rng) & 1) {
			drop(f, i);
			put(f, i, bench_rng_range(&rng, 16, 128));
		}
	}
	phase_end(f, 4);
	for (uint64_t i = 0; i < n; i++)
		if (i % 16)
			drop(f, i);
	phase_end(f, 5);
	return NULL;
}

static void usage(FILE *f)
{
	fprintf(f,
"usage: frag [options]\n"
"  -b, --blocks N    blocks per thread in phase 1 (default 100000)\n"
"  -t, --threads N   independent copies in parallel (default 1)\n"
"  -S, --seed N      RNG seed (default 42)\n");
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "blocks", required_argument, NULL, 'b' },
		{ "threads", required_argument, NULL, 't' },
		{ "seed", required_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "b:t:S:h", lo, NULL)) != -1) {
		switch (c) {
		case 'b': cfg.blocks = bench_parse_u64("--blocks", optarg); break;
		case 't': cfg.threads = (unsigned)bench_parse_u64("--threads", optarg); break;
		case 'S': cfg.seed = bench_parse_u64("--seed", optarg); break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) { usage(stderr); return 2; }
	if (cfg.blocks < 2 || cfg.threads < 1 || cfg.threads > 1024)
		bench_die("need --blocks >= 2 and --threads 1..1024");

	bench_report_allocator(stdout);
	all = mmap(NULL, cfg.threads * sizeof(fr_t), PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (all == MAP_FAILED) bench_die("mmap failed");
	for (unsigned i = 0; i < cfg.threads; i++) {
		all[i].id = i;
		/* Book-keeping arrays come from mmap, not from the allocator. */
		all[i].p = mmap(NULL, cfg.blocks * sizeof(void *), PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		all[i].sz = mmap(NULL, cfg.blocks * sizeof(uint32_t), PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (all[i].p == MAP_FAILED || all[i].sz == MAP_FAILED) bench_die("mmap failed");
		memset(all[i].p, 0, cfg.blocks * sizeof(void *));
		memset(all[i].sz, 0, cfg.blocks * sizeof(uint32_t));
	}
	bench_barrier_init(&b_phase, cfg.threads);
	bench_usage_t u0 = bench_usage();
	uint64_t t0 = bench_now_ns();
	for (unsigned i = 1; i < cfg.threads; i++)
		if (pthread_create(&all[i].tid, NULL, run, &all[i]))
			bench_die("pthread_create failed");
	run(&all[0]);
	for (unsigned i = 1; i < cfg.threads; i++)
		pthread_join(all[i].tid, NULL);
	uint64_t t1 = bench_now_ns();
	bench_usage_t u1 = bench_usage();

	uint64_t peak = 0, ops = 0;
	for (unsigned i = 0; i < cfg.threads; i++) {
		peak += all[i].live_peak;
		ops += all[i].ops;
	}
	double secs = (t1 - t0) / 1e9;
	printf("bench=frag\nthreads=%u\nblocks=%" PRIu64 "\nseed=%" PRIu64 "\n",
	       cfg.threads, cfg.blocks, cfg.seed);
	printf("elapsed_s=%.6f\nops_total=%" PRIu64 "\nmops=%.4f\n", secs, ops, ops / secs / 1e6);
	printf("base_rss_kb=%ld\n", phase_rss[0]);
	for (int ph = 1; ph <= 5; ph++)
		printf("phase%d_live_kb=%" PRIu64 "\nphase%d_rss_kb=%ld\n",
		       ph, phase_live[ph] / 1024, ph, phase_rss[ph]);
	printf("live_peak_kb=%" PRIu64 "\n", peak / 1024);
	printf("maxrss_kb=%ld\nvmhwm_kb=%ld\n", u1.maxrss_kb, u1.vmhwm_kb);
	long base = phase_rss[0];
	printf("rss_ratio=%.3f\n", peak ? (u1.vmhwm_kb - base) * 1024.0 / (double)peak : 0.0);
	printf("final_live_kb=%" PRIu64 "\nfinal_rss_kb=%ld\n", phase_live[5] / 1024, phase_rss[5]);
	printf("final_ratio=%.3f\n", phase_live[5] ? (phase_rss[5] - base) * 1024.0 / (double)phase_live[5] : 0.0);
	printf("minflt=%ld\n", u1.minflt - u0.minflt);
	return 0;
}
