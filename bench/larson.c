/* larson.c - Larson-style server simulation with thread churn.
 *
 * --threads N slots run concurrently.  Each slot owns an array of --blocks
 * live blocks (filled by the main thread before timing).  A worker thread
 * does --thread-ops operations on its slot (pick a random victim, free it,
 * malloc a new block of --min..--max bytes, memset it), then creates its
 * successor and exits; the successor inherits the array, so blocks are
 * freed by threads other than the one that allocated them, after that
 * thread has exited (Larson & Krishnan, ISMM'98; mimalloc-bench "larsonN").
 * The run lasts --seconds; throughput counts operations of all threads.
 */
#include "bench_common.h"

#include <getopt.h>
#include <stdatomic.h>

static struct {
	unsigned threads;
	uint64_t blocks, thread_ops, seed;
	uint32_t min, max;
	double seconds;
	unsigned sample;
} cfg = { 2, 5000, 20000, 42, 8, 1000, 2.0, 8 };

/* Samples kept per slot and kind (the first ones; 1 MiB each).  Their
 * memory is subtracted from VmHWM for rss_ratio. */
#define SAMPLE_CAP (1u << 18)

typedef struct {
	unsigned id;
	void **arr;
	uint32_t *sz;
	bench_rng_t rng;
	uint64_t ops, generations, live, live_peak;
	bench_samples_t ms, fs;
	uint64_t t_end;
} slot_t;

static atomic_int stop_flag;
static atomic_int active;
static bench_barrier_t b_go;
static atomic_int failed;

static void *worker(void *arg);

static void spawn(slot_t *s)
{
	pthread_t t;
	pthread_attr_t a;
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	int e = pthread_create(&t, &a, worker, s);
	pthread_attr_destroy(&a);
	if (e) {
		fprintf(stderr, "bench: error: pthread_create: %s\n", strerror(e));
		atomic_store(&failed, 1);
		atomic_store(&stop_flag, 1);
		atomic_fetch_sub(&active, 1);
	}
}

static void *worker(void *arg)
{
	slot_t *s = arg;
	if (s->generations == 0)
		bench_barrier_wait(&b_go);
	s->generations++;
	unsigned countdown = cfg.sample ? (unsigned)(s->ops % cfg.sample) + 1 : 0;
	uint64_t done = 0;
	for (; done < cfg.thread_ops; done++) {
		if ((done & 1023) == 0 && atomic_load_explicit(&stop_flag, memory_order_relaxed))
			break;
		uint64_t v = bench_rng_range(&s->rng, 0, (uint32_t)(cfg.blocks - 1));
		uint32_t sz = bench_rng_range(&s->rng, cfg.min, cfg.max);
		void *p;
		if (countdown && --countdown == 0) {
			countdown = cfg.sample;
			uint64_t t0 = bench_ticks();
			free(s->arr[v]);
			uint64_t t1 = bench_ticks();
			p = malloc(sz);
			uint64_t t2 = bench_ticks();
			bench_samples_add(&s->fs, t1 - t0);
			bench_samples_add(&s->ms, t2 - t1);
		} else {
			free(s->arr[v]);
			p = malloc(sz);
		}
		if (!p) bench_die("malloc(%u) returned NULL", sz);
		memset(p, (int)(done & 0xff) | 1, sz);
		s->arr[v] = p;
		s->live += (uint64_t)sz - s->sz[v];
		s->sz[v] = sz;
		if (s->live > s->live_peak) s->live_peak = s->live;
	}
	s->ops += done;
	if (!atomic_load(&stop_flag)) {
		spawn(s); /* the successor inherits s and everything in it */
	} else {
		s->t_end = bench_now_ns();
		atomic_fetch_sub(&active, 1);
	}
	return NULL;
}

static void usage(FILE *f)
{
	fprintf(f,
"usage: larson [options]\n"
"  -t, --threads N       concurrent threads (default 2)\n"
"      --blocks N        live blocks per thread slot (default 5000)\n"
"      --thread-ops N    operations before a thread hands over (default 20000)\n"
"      --min N --max N   block size range in bytes (default 8..1000)\n"
"  -d, --seconds S       run time (default 2)\n"
"  -S, --seed N          RNG seed (default 42)\n"
"      --sample N        time every Nth malloc and free (default 8, 0=off)\n");
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "threads", required_argument, NULL, 't' },
		{ "blocks", required_argument, NULL, 'b' },
		{ "thread-ops", required_argument, NULL, 'o' },
		{ "min", required_argument, NULL, 'l' },
		{ "max", required_argument, NULL, 'u' },
		{ "seconds", required_argument, NULL, 'd' },
		{ "seed", required_argument, NULL, 'S' },
		{ "sample", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "t:d:S:h", lo, NULL)) != -1) {
		switch (c) {
		case 't': cfg.threads = (unsigned)bench_parse_u64("--threads", optarg); break;
		case 'b': cfg.blocks = bench_parse_u64("--blocks", optarg); break;
		case 'o': cfg.thread_ops = bench_parse_u64("--thread-ops", optarg); break;
		case 'l': cfg.min = (uint32_t)bench_parse_u64("--min", optarg); break;
		case 'u': cfg.max = (uint32_t)bench_parse_u64("--max", optarg); break;
		case 'd': cfg.seconds = bench_parse_double("--seconds", optarg); break;
		case 'S': cfg.seed = bench_parse_u64("--seed", optarg); break;
		case 'p': cfg.sample = (unsigned)bench_parse_u64("--sample", optarg); break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) { usage(stderr); return 2; }
	if (cfg.threads < 1 || cfg.threads > 4096) bench_die("--threads must be 1..4096");
	if (cfg.blocks < 1 || cfg.blocks > UINT32_MAX || cfg.thread_ops < 1)
		bench_die("--blocks and --thread-ops must be >= 1");
	if (cfg.min < 1 || cfg.max < cfg.min) bench_die("need 1 <= --min <= --max");

	long start_rss_kb = bench_status_kb("VmRSS");
	bench_report_allocator(stdout);
	bench_calibrate_ticks();
	uint64_t ovh = bench_timer_overhead_ticks();

	slot_t *s = calloc(cfg.threads, sizeof *s);
	if (!s) bench_die("out of memory");
	for (unsigned i = 0; i < cfg.threads; i++) {
		s[i].id = i;
		bench_rng_seed(&s[i].rng, cfg.seed, i);
		/* Book-keeping from mmap, so it is not the allocator's memory. */
		s[i].arr = mmap(NULL, cfg.blocks * sizeof(void *), PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		s[i].sz = mmap(NULL, cfg.blocks * sizeof(uint32_t), PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (s[i].arr == MAP_FAILED || s[i].sz == MAP_FAILED) bench_die("mmap failed");
		for (uint64_t k = 0; k < cfg.blocks; k++) {
			uint32_t sz = bench_rng_range(&s[i].rng, cfg.min, cfg.max);
			s[i].arr[k] = malloc(sz);
			if (!s[i].arr[k]) bench_die("malloc returned NULL");
			memset(s[i].arr[k], 1, sz);
			s[i].sz[k] = sz;
			s[i].live += sz;
		}
		s[i].live_peak = s[i].live;
		bench_samples_init(&s[i].ms, cfg.sample ? SAMPLE_CAP : 0);
		bench_samples_init(&s[i].fs, cfg.sample ? SAMPLE_CAP : 0);
	}
	bench_barrier_init(&b_go, cfg.threads + 1);
	atomic_store(&active, (int)cfg.threads);
	for (unsigned i = 0; i < cfg.threads; i++)
		spawn(&s[i]);
	bench_usage_t u0 = bench_usage();
	bench_barrier_wait(&b_go);
	uint64_t t0 = bench_now_ns();
	struct timespec ts = { (time_t)cfg.seconds,
			       (long)((cfg.seconds - (time_t)cfg.seconds) * 1e9) };
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
	atomic_store(&stop_flag, 1);
	while (atomic_load(&active) > 0) {
		struct timespec ms = { 0, 200000 };
		nanosleep(&ms, NULL);
	}
	uint64_t t1 = 0;
	for (unsigned i = 0; i < cfg.threads; i++)
		if (s[i].t_end > t1) t1 = s[i].t_end;
	bench_usage_t u1 = bench_usage();
	if (atomic_load(&failed))
		bench_die("thread creation failed");

	uint64_t ops = 0, gens = 0, live = 0, live_peak = 0;
	bench_samples_t *ms = calloc(cfg.threads, sizeof *ms), *fs = calloc(cfg.threads, sizeof *fs);
	if (!ms || !fs) bench_die("out of memory");
	for (unsigned i = 0; i < cfg.threads; i++) {
		ops += s[i].ops;
		gens += s[i].generations;
		live += s[i].live;
		live_peak += s[i].live_peak;
		ms[i] = s[i].ms;
		fs[i] = s[i].fs;
	}
	double secs = (t1 - t0) / 1e9;
	bench_pct_t pm = bench_percentiles(ms, (int)cfg.threads);
	bench_pct_t pf = bench_percentiles(fs, (int)cfg.threads);
	for (unsigned i = 0; i < cfg.threads; i++)
		for (uint64_t k = 0; k < cfg.blocks; k++)
			free(s[i].arr[k]);

	printf("bench=larson\nthreads=%u\nblocks=%" PRIu64 "\nthread_ops=%" PRIu64 "\n",
	       cfg.threads, cfg.blocks, cfg.thread_ops);
	printf("min=%u\nmax=%u\nseconds=%.2f\nseed=%" PRIu64 "\nsample_every=%u\n",
	       cfg.min, cfg.max, cfg.seconds, cfg.seed, cfg.sample);
	printf("tick_source=%s\ntimer_overhead_ns=%.1f\n", bench_tick_source, ovh * bench_tick_ns);
	printf("elapsed_s=%.6f\nops_total=%" PRIu64 "\nthreads_created=%" PRIu64 "\n", secs, ops, gens);
	printf("mops=%.4f\n", (double)ops / secs / 1e6);
	printf("malloc_p50_ns=%.0f\nmalloc_p99_ns=%.0f\nmalloc_p999_ns=%.0f\nmalloc_max_ns=%.0f\n",
	       pm.p50, pm.p99, pm.p999, pm.max);
	printf("free_p50_ns=%.0f\nfree_p99_ns=%.0f\nfree_p999_ns=%.0f\nfree_max_ns=%.0f\n",
	       pf.p50, pf.p99, pf.p999, pf.max);
	printf("live_kb=%" PRIu64 "\nlive_peak_kb=%" PRIu64 "\n", live / 1024, live_peak / 1024);
	/* The allocator's resident memory: VmHWM minus the process before
	 * main() and the bench's own mmap'ed arrays and sample buffers.
	 * Thread stacks (glibc caches those of exited threads) stay in. */
	long own_kb = (long)((cfg.sample ? 2ULL * SAMPLE_CAP * sizeof(uint32_t) : 0) +
			     cfg.blocks * (sizeof(void *) + sizeof(uint32_t))) * (long)cfg.threads / 1024;
	long base_kb = start_rss_kb + own_kb;
	printf("maxrss_kb=%ld\nvmhwm_kb=%ld\nbase_rss_kb=%ld\nrss_ratio=%.3f\n",
	       u1.maxrss_kb, u1.vmhwm_kb, base_kb,
	       live_peak ? (u1.vmhwm_kb - base_kb) * 1024.0 / (double)live_peak : 0.0);
	printf("minflt=%ld\nutime_s=%.3f\nstime_s=%.3f\n", u1.minflt - u0.minflt,
	       u1.utime - u0.utime, u1.stime - u0.stime);
	return 0;
}
