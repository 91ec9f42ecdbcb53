/* phases.c - RSS over time across allocate / free / idle phases (issue 14).
 *
 * --threads K worker threads live for the whole run and take turns, for
 * --cycles C turns each (K * C phases).  In its phase a worker
 *   1. allocates --mib M MiB in bench_mix14_size blocks, writing each,
 *   2. frees them all, in a shuffled order,
 *   3. goes back to waiting for its next turn: it stays alive but makes
 *      no allocator call;
 * and then the whole process is idle for --idle MS milliseconds (the main
 * thread sleeps) before the next worker's phase.  What an allocator keeps
 * committed after a thread stopped calling it shows as RSS that stays up
 * through the idle gaps.
 *
 * A sampler thread reads /proc/self/statm every --interval MS (read(2)
 * on an fd opened once; it never calls the allocator) and keeps the
 * samples in an mmap'd buffer.  At the end they are written to --out FILE
 * as CSV (t_s,rss_mib,phase,state; state = work or idle), and one line
 * goes to stdout:
 *   phases threads=K ... base_kb=B peak_kb=P idle_end_kb=I1;I2;...
 * with the RSS read at the end of each idle gap (before the next phase).
 */
#include "bench_common.h"

#include <fcntl.h>
#include <getopt.h>
#include <stdatomic.h>

static struct {
	unsigned threads, cycles, idle_ms, interval_ms;
	uint64_t mib, seed;
	const char *out;
} cfg = { 4, 2, 1000, 20, 64, 42, NULL };

typedef struct {
	double t;
	long rss_kb;
	int phase, work;
} sample_t;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int turn = -1;      /* worker whose phase it is, -1 none, -2 quit */
static int done_phase = -1;

static atomic_int cur_phase, cur_work, stop;
static sample_t *samples;
static size_t nsamples, max_samples;
static uint64_t t0;
static long page_kb;
static int statm_fd;

static long rss_kb(void)
{
	char buf[128];
	ssize_t n = pread(statm_fd, buf, sizeof buf - 1, 0);
	if (n <= 0) bench_die("reading /proc/self/statm failed");
	buf[n] = 0;
	char *p = strchr(buf, ' ');
	if (!p) bench_die("bad /proc/self/statm");
	return strtol(p + 1, NULL, 10) * page_kb;
}

static void *sampler(void *arg)
{
	(void)arg;
	struct timespec ts = { 0, (long)cfg.interval_ms * 1000000L };
	while (!atomic_load(&stop) && nsamples < max_samples) {
		samples[nsamples++] = (sample_t){
			.t = (double)(bench_now_ns() - t0) / 1e9,
			.rss_kb = rss_kb(),
			.phase = atomic_load(&cur_phase),
			.work = atomic_load(&cur_work),
		};
		nanosleep(&ts, NULL);
	}
	return NULL;
}

typedef struct {
	int id;
	pthread_t tid;
	void **p;
	size_t cap;
} worker_t;

static void one_phase(worker_t *w, bench_rng_t *rng)
{
	uint64_t want = cfg.mib << 20, have = 0;
	size_t n = 0;
	while (have < want) {
		if (n == w->cap) bench_die("block array full");
		uint32_t sz = bench_mix14_size(rng);
		char *b = malloc(sz);
		if (!b) bench_die("malloc(%u) returned NULL", sz);
		memset(b, (int)(n & 0xff), sz);
		w->p[n++] = b;
		have += sz;
	}
	for (size_t i = n - 1; i > 0; i--) {
		size_t j = bench_rng_range(rng, 0, (uint32_t)i);
		void *t = w->p[i];
		w->p[i] = w->p[j];
		w->p[j] = t;
	}
	for (size_t i = 0; i < n; i++)
		free(w->p[i]);
}

static void *worker(void *arg)
{
	worker_t *w = arg;
	bench_rng_t rng;
	bench_rng_seed(&rng, cfg.seed, (uint64_t)w->id);
	pthread_mutex_lock(&mu);
	for (;;) {
		while (turn != w->id && turn != -2)
			pthread_cond_wait(&cv, &mu);
		if (turn == -2) break;
		pthread_mutex_unlock(&mu);
		one_phase(w, &rng);
		pthread_mutex_lock(&mu);
		turn = -1;
		done_phase = atomic_load(&cur_phase);
		pthread_cond_broadcast(&cv);
	}
	pthread_mutex_unlock(&mu);
	return NULL;
}

static void usage(FILE *f)
{
	fprintf(f,
"usage: phases [options]\n"
"  -t, --threads K    worker threads taking turns (default 4)\n"
"  -c, --cycles C     turns per worker (default 2)\n"
"  -m, --mib M        MiB allocated per phase (default 64)\n"
"  -i, --idle MS      idle gap after each phase (default 1000)\n"
"  -s, --interval MS  RSS sampling interval (default 20)\n"
"  -o, --out FILE     samples as CSV (default: none)\n"
"  -S, --seed N       RNG seed (default 42)\n");
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "threads", required_argument, NULL, 't' },
		{ "cycles", required_argument, NULL, 'c' },
		{ "mib", required_argument, NULL, 'm' },
		{ "idle", required_argument, NULL, 'i' },
		{ "interval", required_argument, NULL, 's' },
		{ "out", required_argument, NULL, 'o' },
		{ "seed", required_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "t:c:m:i:s:o:S:h", lo, NULL)) != -1) {
		switch (c) {
		case 't': cfg.threads = (unsigned)bench_parse_u64("--threads", optarg); break;
		case 'c': cfg.cycles = (unsigned)bench_parse_u64("--cycles", optarg); break;
		case 'm': cfg.mib = bench_parse_u64("--mib", optarg); break;
		case 'i': cfg.idle_ms = (unsigned)bench_parse_u64("--idle", optarg); break;
		case 's': cfg.interval_ms = (unsigned)bench_parse_u64("--interval", optarg); break;
		case 'o': cfg.out = optarg; break;
		case 'S': cfg.seed = bench_parse_u64("--seed", optarg); break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) { usage(stderr); return 2; }
	if (cfg.threads < 1 || cfg.threads > 256 || cfg.cycles < 1 || cfg.mib < 1 ||
	    cfg.mib > 4096 || cfg.interval_ms < 1)
		bench_die("need --threads 1..256, --cycles >= 1, --mib 1..4096, --interval >= 1");

	bench_report_allocator(stdout);
	fflush(stdout);
	page_kb = sysconf(_SC_PAGESIZE) / 1024;
	statm_fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
	if (statm_fd < 0) bench_die("cannot open /proc/self/statm");
	unsigned nphases = cfg.threads * cfg.cycles;
	/* Book-keeping from mmap: the allocator under test holds only the
	 * phases' blocks. */
	max_samples = 1u << 20;
	samples = mmap(NULL, max_samples * sizeof *samples, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	worker_t *w = mmap(NULL, cfg.threads * sizeof *w, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	long *idle_end = mmap(NULL, nphases * sizeof(long), PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (samples == MAP_FAILED || w == MAP_FAILED || idle_end == MAP_FAILED)
		bench_die("mmap failed");
	for (unsigned i = 0; i < cfg.threads; i++) {
		w[i].id = (int)i;
		w[i].cap = (size_t)(cfg.mib << 20) / 16 + 1;
		w[i].p = mmap(NULL, w[i].cap * sizeof(void *), PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (w[i].p == MAP_FAILED) bench_die("mmap failed");
		int e = pthread_create(&w[i].tid, NULL, worker, &w[i]);
		if (e) bench_die("pthread_create: %s", strerror(e));
	}
	long base = rss_kb();
	t0 = bench_now_ns();
	pthread_t st;
	int e = pthread_create(&st, NULL, sampler, NULL);
	if (e) bench_die("pthread_create: %s", strerror(e));

	struct timespec idle = { cfg.idle_ms / 1000, (long)(cfg.idle_ms % 1000) * 1000000L };
	for (unsigned ph = 0; ph < nphases; ph++) {
		atomic_store(&cur_phase, (int)ph);
		atomic_store(&cur_work, 1);
		pthread_mutex_lock(&mu);
		turn = (int)(ph % cfg.threads);
		pthread_cond_broadcast(&cv);
		while (done_phase != (int)ph)
			pthread_cond_wait(&cv, &mu);
		pthread_mutex_unlock(&mu);
		atomic_store(&cur_work, 0);
		nanosleep(&idle, NULL);
		idle_end[ph] = rss_kb();
	}
	atomic_store(&stop, 1);
	pthread_join(st, NULL);
	pthread_mutex_lock(&mu);
	turn = -2;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	for (unsigned i = 0; i < cfg.threads; i++)
		pthread_join(w[i].tid, NULL);

	long peak = 0;
	for (size_t i = 0; i < nsamples; i++)
		if (samples[i].rss_kb > peak) peak = samples[i].rss_kb;
	if (cfg.out) {
		FILE *f = fopen(cfg.out, "w");
		if (!f) bench_die("cannot write %s: %s", cfg.out, strerror(errno));
		fprintf(f, "t_s,rss_mib,phase,state\n");
		for (size_t i = 0; i < nsamples; i++)
			fprintf(f, "%.3f,%.2f,%d,%s\n", samples[i].t, samples[i].rss_kb / 1024.0,
				samples[i].phase, samples[i].work ? "work" : "idle");
		if (fclose(f)) bench_die("writing %s failed", cfg.out);
	}
	printf("phases threads=%u cycles=%u mib=%" PRIu64 " idle_ms=%u samples=%zu base_kb=%ld"
	       " peak_kb=%ld vmhwm_kb=%ld idle_end_kb=",
	       cfg.threads, cfg.cycles, cfg.mib, cfg.idle_ms, nsamples, base, peak,
	       bench_status_kb("VmHWM"));
	for (unsigned ph = 0; ph < nphases; ph++)
		printf("%s%ld", ph ? ";" : "", idle_end[ph]);
	printf("\n");
	return 0;
}
