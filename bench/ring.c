/* ring.c - the design document's ring-buffer workload.
 *
 * Per thread: a ring of --slots (100,000) pointers and --ops (250,000)
 * operations.  Operation i uses slot i % slots: free the block that is
 * there (if any), malloc a new one of the next pre-generated size, memset
 * it.  Sizes: 60% 16-256 B, 30% 512-2048 B, 10% 4096-32768 B, from a
 * per-thread xoshiro256** seeded by (--seed, thread id), generated before
 * timing.  Timing covers only the loop: threads are created, generate their
 * sizes, and then start together at a barrier.
 *
 * --floor=cold|warm runs the same loop over a pre-allocated pool instead of
 * malloc/free: slot s owns a fixed block as large as the largest size that
 * slot receives in the run, all carved from one mmap'ed region.  "cold"
 * leaves the pool untouched (the loop takes the first-touch page faults, as
 * an allocator getting fresh memory does), "warm" pre-touches it.  The
 * allocator's own cost is the time above the floor.
 *
 * Latency: every --sample'th operation (default 8; 0 = off) is timed with
 * rdtscp around free and around malloc separately; samples go to per-thread
 * mmap'ed arrays sized before timing.  Untimed operations run the same code
 * without the timer reads.  The output is key=value lines.
 */
#include "bench_common.h"

#include <getopt.h>

enum { MODE_ALLOC = 0, MODE_FLOOR_COLD = 1, MODE_FLOOR_WARM = 2 };

static struct {
	unsigned threads;
	uint64_t ops, slots, seed;
	unsigned sample;
	int mode;
	int small_only;
} cfg = { 1, 250000, 100000, 42, 8, MODE_ALLOC, 0 };

typedef struct {
	unsigned id;
	pthread_t tid;
	uint32_t *sizes;      /* ops pre-generated sizes */
	void **ring;          /* slots pointers */
	char *pool;           /* floor mode */
	size_t pool_bytes;
	uint64_t *slot_off;   /* floor mode: offset of each slot's block */
	bench_samples_t ms, fs;
	uint64_t live_peak;
	uint64_t bench_bytes; /* the bench's own resident arrays */
	uint64_t t_start, t_end;
	uint64_t checksum;
} worker_t;

static bench_barrier_t b_ready, b_go, b_done, b_release;
static uint64_t timer_overhead;

static void *map_zeroed(size_t bytes, int touch)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		bench_die("mmap of %zu bytes failed", bytes);
	if (touch)
		memset(p, 0, bytes);
	return p;
}

static void setup(worker_t *w)
{
	bench_rng_t rng;
	bench_rng_seed(&rng, cfg.seed, w->id);
	w->sizes = map_zeroed(cfg.ops * sizeof(uint32_t), 1);
	w->ring = map_zeroed(cfg.slots * sizeof(void *), 1);
	for (uint64_t i = 0; i < cfg.ops; i++)
		w->sizes[i] = bench_ring_size(&rng, cfg.small_only);

	/* Live requested bytes over the run (for RSS / live). */
	uint64_t live = 0, peak = 0;
	uint32_t *cur = map_zeroed(cfg.slots * sizeof(uint32_t), 1);
	for (uint64_t i = 0; i < cfg.ops; i++) {
		uint64_t s = i % cfg.slots;
		live -= cur[s];
		cur[s] = w->sizes[i];
		live += cur[s];
		if (live > peak) peak = live;
	}
	w->live_peak = peak;

	if (cfg.mode != MODE_ALLOC) {
		/* Largest size per slot, 16-byte aligned, one region. */
		memset(cur, 0, cfg.slots * sizeof(uint32_t));
		for (uint64_t i = 0; i < cfg.ops; i++) {
			uint64_t s = i % cfg.slots;
			if (w->sizes[i] > cur[s]) cur[s] = w->sizes[i];
		}
		w->slot_off = map_zeroed(cfg.slots * sizeof(uint64_t), 1);
		uint64_t off = 0;
		for (uint64_t s = 0; s < cfg.slots; s++) {
			w->slot_off[s] = off;
			off += (cur[s] + 15u) & ~15u;
		}
		w->pool_bytes = off ? off : 16;
		w->pool = map_zeroed(w->pool_bytes, cfg.mode == MODE_FLOOR_WARM);
	}
	munmap(cur, cfg.slots * sizeof(uint32_t));

	size_t nsamp = cfg.sample ? cfg.ops / cfg.sample + 1 : 0;
	bench_samples_init(&w->ms, nsamp);
	bench_samples_init(&w->fs, nsamp);
	w->bench_bytes = cfg.ops * sizeof(uint32_t) + cfg.slots * sizeof(void *) +
			 2 * nsamp * sizeof(uint32_t) +
			 (cfg.mode != MODE_ALLOC ? cfg.slots * sizeof(uint64_t) : 0);
}

/* The timed loop.  `floor` is a compile-time constant at each call site,
 * so the two variants share every line except the two allocator calls. */
static inline __attribute__((always_inline)) void
run_loop(worker_t *w, const int floor)
{
	void **ring = w->ring;
	const uint32_t *sizes = w->sizes;
	const uint64_t ops = cfg.ops, slots = cfg.slots;
	const unsigned every = cfg.sample;
	unsigned countdown = every ? 1 : 0; /* op 0 is sampled */
	uint64_t s = 0;
	for (uint64_t i = 0; i < ops; i++) {
		size_t sz = sizes[i];
		void *old = ring[s];
		void *p;
		if (countdown && --countdown == 0) {
			countdown = every;
			uint64_t t0 = bench_ticks();
			if (old && !floor)
				free(old);
			uint64_t t1 = bench_ticks();
			p = floor ? (void *)(w->pool + w->slot_off[s]) : malloc(sz);
			uint64_t t2 = bench_ticks();
			if (old)
				bench_samples_add(&w->fs, t1 - t0);
			bench_samples_add(&w->ms, t2 - t1);
		} else {
			if (old && !floor)
				free(old);
			p = floor ? (void *)(w->pool + w->slot_off[s]) : malloc(sz);
		}
		if (__builtin_expect(p == NULL, 0))
			bench_die("malloc(%zu) returned NULL", sz);
		memset(p, (int)(i & 0xff) | 1, sz);
		bench_escape(p);
		ring[s] = p;
		if (++s == slots)
			s = 0;
	}
}

/* The timed region as one function, never inlined or cloned, so that
 * bench/callgrind.sh can count exactly its instructions with
 * valgrind --tool=callgrind --toggle-collect=timed_loop. */
/* gcc only: keep callgrind's function boundaries exact (clang has no noclone). */
#if defined(__GNUC__) && !defined(__clang__)
#define BENCH_NOCLONE __attribute__((noclone))
#else
#define BENCH_NOCLONE
#endif

static __attribute__((noinline)) BENCH_NOCLONE void timed_loop(worker_t *w)
{
	if (cfg.mode == MODE_ALLOC)
		run_loop(w, 0);
	else
		run_loop(w, 1);
}

/* Frees what is left in the ring (untimed).  callgrind.sh counts it too,
 * so that its totals hold exactly --ops mallocs and --ops frees. */
static __attribute__((noinline)) BENCH_NOCLONE uint64_t ring_cleanup(worker_t *w)
{
	uint64_t sum = 0;
	for (uint64_t s = 0; s < cfg.slots; s++) {
		if (w->ring[s]) {
			sum += *(unsigned char *)w->ring[s];
			if (cfg.mode == MODE_ALLOC)
				free(w->ring[s]);
		}
	}
	return sum;
}

static void *worker_main(void *arg)
{
	worker_t *w = arg;
	setup(w);
	/* One malloc/free so the allocator's per-thread set-up (TLS, heap
	 * creation) happens with the rest of the set-up, not in the loop. */
	void *warm = malloc(16);
	bench_escape(warm);
	free(warm);

	bench_barrier_wait(&b_ready);
	bench_barrier_wait(&b_go);
	w->t_start = bench_now_ns();
	timed_loop(w);
	w->t_end = bench_now_ns();
	bench_barrier_wait(&b_done);
	bench_barrier_wait(&b_release);
	w->checksum = ring_cleanup(w);
	return NULL;
}

static void usage(FILE *f)
{
	fprintf(f,
"usage: ring [options]\n"
"  -t, --threads N     worker threads (default 1)\n"
"  -n, --ops N         operations per thread (default 250000)\n"
"  -s, --slots N       ring slots per thread (default 100000)\n"
"  -S, --seed N        RNG seed (default 42); thread t uses stream t\n"
"      --small-only    every size 16-256 B (default: 60/30/10 mix)\n"
"      --floor=MODE    no malloc/free: pool blocks, MODE cold or warm\n"
"      --sample N      time every Nth op's malloc and free (default 8, 0=off)\n"
"  -h, --help\n"
"Output: key=value lines (see bench/README.md).\n");
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "threads", required_argument, NULL, 't' },
		{ "ops", required_argument, NULL, 'n' },
		{ "slots", required_argument, NULL, 's' },
		{ "seed", required_argument, NULL, 'S' },
		{ "small-only", no_argument, NULL, 'm' },
		{ "floor", optional_argument, NULL, 'f' },
		{ "sample", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "t:n:s:S:h", lo, NULL)) != -1) {
		switch (c) {
		case 't': cfg.threads = (unsigned)bench_parse_u64("--threads", optarg); break;
		case 'n': cfg.ops = bench_parse_u64("--ops", optarg); break;
		case 's': cfg.slots = bench_parse_u64("--slots", optarg); break;
		case 'S': cfg.seed = bench_parse_u64("--seed", optarg); break;
		case 'm': cfg.small_only = 1; break;
		case 'f':
			if (!optarg || !strcmp(optarg, "cold")) cfg.mode = MODE_FLOOR_COLD;
			else if (!strcmp(optarg, "warm")) cfg.mode = MODE_FLOOR_WARM;
			else bench_die("--floor takes cold or warm, not '%s'", optarg);
			break;
		case 'p': cfg.sample = (unsigned)bench_parse_u64("--sample", optarg); break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) { usage(stderr); return 2; }
	if (cfg.threads < 1 || cfg.threads > 4096) bench_die("--threads must be 1..4096");
	if (cfg.slots < 1 || cfg.ops < 1) bench_die("--ops and --slots must be >= 1");

	long start_rss_kb = bench_status_kb("VmRSS");
	bench_report_allocator(stdout);
	bench_calibrate_ticks();
	timer_overhead = bench_timer_overhead_ticks();

	worker_t *w = calloc(cfg.threads, sizeof *w);
	if (!w) bench_die("out of memory");
	bench_barrier_init(&b_ready, cfg.threads + 1);
	bench_barrier_init(&b_go, cfg.threads + 1);
	bench_barrier_init(&b_done, cfg.threads + 1);
	bench_barrier_init(&b_release, cfg.threads + 1);
	for (unsigned i = 0; i < cfg.threads; i++) {
		w[i].id = i;
		if (pthread_create(&w[i].tid, NULL, worker_main, &w[i]))
			bench_die("pthread_create failed");
	}
	bench_barrier_wait(&b_ready);
	bench_usage_t u0 = bench_usage();
	bench_barrier_wait(&b_go);
	bench_barrier_wait(&b_done);
	bench_usage_t u1 = bench_usage();
	bench_barrier_wait(&b_release);
	for (unsigned i = 0; i < cfg.threads; i++)
		pthread_join(w[i].tid, NULL);
	bench_usage_t u2 = bench_usage();

	uint64_t t0 = UINT64_MAX, t1 = 0, live = 0, sum = 0, own = 0;
	bench_samples_t *ms = calloc(cfg.threads, sizeof *ms);
	bench_samples_t *fs = calloc(cfg.threads, sizeof *fs);
	if (!ms || !fs) bench_die("out of memory");
	for (unsigned i = 0; i < cfg.threads; i++) {
		if (w[i].t_start < t0) t0 = w[i].t_start;
		if (w[i].t_end > t1) t1 = w[i].t_end;
		live += w[i].live_peak;
		own += w[i].bench_bytes;
		sum += w[i].checksum;
		ms[i] = w[i].ms;
		fs[i] = w[i].fs;
	}
	double secs = (t1 - t0) / 1e9;
	double total_ops = (double)cfg.ops * cfg.threads;
	bench_pct_t pm = bench_percentiles(ms, (int)cfg.threads);
	bench_pct_t pf = bench_percentiles(fs, (int)cfg.threads);
	static const char *const mode_name[] = { "alloc", "floor_cold", "floor_warm" };

	printf("bench=ring\n");
	printf("mode=%s\n", mode_name[cfg.mode]);
	printf("threads=%u\nops=%" PRIu64 "\nslots=%" PRIu64 "\nseed=%" PRIu64 "\n",
	       cfg.threads, cfg.ops, cfg.slots, cfg.seed);
	printf("small_only=%d\nsample_every=%u\n", cfg.small_only, cfg.sample);
	printf("tick_source=%s\ntick_ns=%.5f\ntimer_overhead_ns=%.1f\n",
	       bench_tick_source, bench_tick_ns, timer_overhead * bench_tick_ns);
	printf("elapsed_s=%.6f\n", secs);
	printf("mops=%.4f\n", total_ops / secs / 1e6);
	printf("ns_per_op_thread=%.2f\n", secs * 1e9 / (double)cfg.ops);
	printf("malloc_p50_ns=%.0f\nmalloc_p99_ns=%.0f\nmalloc_p999_ns=%.0f\nmalloc_max_ns=%.0f\nmalloc_samples=%zu\n",
	       pm.p50, pm.p99, pm.p999, pm.max, pm.n);
	printf("free_p50_ns=%.0f\nfree_p99_ns=%.0f\nfree_p999_ns=%.0f\nfree_max_ns=%.0f\nfree_samples=%zu\n",
	       pf.p50, pf.p99, pf.p999, pf.max, pf.n);
	printf("live_peak_kb=%" PRIu64 "\n", live / 1024);
	long hwm = u1.vmhwm_kb > u2.vmhwm_kb ? u1.vmhwm_kb : u2.vmhwm_kb;
	long base_kb = start_rss_kb + (long)(own / 1024);
	printf("maxrss_kb=%ld\nvmhwm_kb=%ld\n", u2.maxrss_kb, hwm);
	/* The allocator's resident memory: VmHWM minus what the process had
	 * before main() did anything and the bench's own mmap'ed arrays. */
	printf("base_rss_kb=%ld\n", base_kb);
	printf("rss_ratio=%.3f\n", live ? (double)(hwm - base_kb) * 1024.0 / (double)live : 0.0);
	printf("minflt=%ld\nminflt_total=%ld\nmajflt=%ld\n", u1.minflt - u0.minflt, u2.minflt, u2.majflt);
	printf("utime_s=%.3f\nstime_s=%.3f\n", u1.utime - u0.utime, u1.stime - u0.stime);
	printf("checksum=%" PRIu64 "\n", sum);
	return 0;
}
