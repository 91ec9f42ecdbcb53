/* bench_common.h - shared helpers for the libfancyalloc benchmark programs.
 *
 * Everything here is static so that each bench program is one translation
 * unit linked against libc, libpthread and libdl only.  The allocator under
 * test is chosen at run time with LD_PRELOAD; bench_report_allocator()
 * prints which shared object really provides malloc/free so the driver
 * scripts can refuse a run that silently fell back to glibc.
 */
#ifndef FA_BENCH_COMMON_H
#define FA_BENCH_COMMON_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <dlfcn.h>
#include <errno.h>
#ifdef __GLIBC__
#include <gnu/libc-version.h>
#endif
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#define BENCH_HAVE_TSC 1
#endif

#define BENCH_UNUSED __attribute__((unused))

/* ------------------------------------------------------------------ */
/* Errors                                                              */
/* ------------------------------------------------------------------ */

static BENCH_UNUSED __attribute__((noreturn, format(printf, 1, 2))) void
bench_die(const char *fmt, ...)
{
	va_list ap;
	fputs("bench: error: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

/* Parse a non-negative integer option value; accepts 250000, 250k, 1m. */
static BENCH_UNUSED uint64_t
bench_parse_u64(const char *opt, const char *s)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || s[0] == '-')
		bench_die("%s: not a number: '%s'", opt, s);
	if (*end == 'k' || *end == 'K') { v *= 1000ULL; end++; }
	else if (*end == 'm' || *end == 'M') { v *= 1000000ULL; end++; }
	if (*end)
		bench_die("%s: not a number: '%s'", opt, s);
	return (uint64_t)v;
}

static BENCH_UNUSED double
bench_parse_double(const char *opt, const char *s)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || v < 0)
		bench_die("%s: not a number: '%s'", opt, s);
	return v;
}

/* ------------------------------------------------------------------ */
/* Random numbers: splitmix64 seeding a xoshiro256** generator.        */
/* ------------------------------------------------------------------ */

typedef struct { uint64_t s[4]; } bench_rng_t;

static inline uint64_t bench_splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9E3779B97F4A7C15ULL);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

static BENCH_UNUSED void bench_rng_seed(bench_rng_t *r, uint64_t seed, uint64_t stream)
{
	uint64_t x = seed ^ (stream * 0xD1B54A32D192ED03ULL);
	for (int i = 0; i < 4; i++)
		r->s[i] = bench_splitmix64(&x);
}

static inline uint64_t bench_rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static inline uint64_t bench_rng_next(bench_rng_t *r)
{
	uint64_t *s = r->s;
	uint64_t result = bench_rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;
	s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
	s[2] ^= t;
	s[3] = bench_rotl(s[3], 45);
	return result;
}

/* Uniform integer in [lo, hi] (Lemire's multiply-shift; bias < 2^-32). */
static inline uint32_t bench_rng_range(bench_rng_t *r, uint32_t lo, uint32_t hi)
{
	uint64_t span = (uint64_t)hi - lo + 1;
	return lo + (uint32_t)(((bench_rng_next(r) >> 32) * span) >> 32);
}

/* The design document's size mix: 60% 16-256 B, 30% 512-2048 B,
 * 10% 4096-32768 B.  small_only: 16-256 B for every request. */
#define BENCH_MAX_SIZE 32768u
static inline uint32_t bench_ring_size(bench_rng_t *r, int small_only)
{
	if (small_only)
		return bench_rng_range(r, 16, 256);
	uint32_t c = bench_rng_range(r, 0, 99);
	if (c < 60) return bench_rng_range(r, 16, 256);
	if (c < 90) return bench_rng_range(r, 512, 2048);
	return bench_rng_range(r, 4096, 32768);
}

/* Issue 14's mix (churn, phases): 60% 16-256 B, 30% 512-4096 B,
 * 9.5% 4-64 KiB and 0.5% 64-512 KiB, above most allocators' small and
 * medium classes (glibc's first mmap threshold is 128 KiB). */
#define BENCH_MIX14_MAX (512u * 1024)
static BENCH_UNUSED uint32_t bench_mix14_size(bench_rng_t *r)
{
	uint32_t c = bench_rng_range(r, 0, 999);
	if (c < 600) return bench_rng_range(r, 16, 256);
	if (c < 900) return bench_rng_range(r, 512, 4096);
	if (c < 995) return bench_rng_range(r, 4097, 65536);
	return bench_rng_range(r, 65537, BENCH_MIX14_MAX);
}

/* ------------------------------------------------------------------ */
/* Clocks                                                              */
/* ------------------------------------------------------------------ */

static inline uint64_t bench_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Per-call latency uses the TSC on x86 (lfence; rdtsc: waits for the
 * preceding instructions, about 10 ns here against about 20-25 ns for a vDSO
 * clock_gettime), calibrated against CLOCK_MONOTONIC once at start-up.
 * Other architectures (aarch64: its vDSO clock_gettime reads the same
 * generic-timer counter an mrs of cntvct_el0 would) use clock_gettime. */
static BENCH_UNUSED double bench_tick_ns = 1.0; /* ns per tick */
static BENCH_UNUSED const char *bench_tick_source = "clock_gettime";

static inline uint64_t bench_ticks(void)
{
#ifdef BENCH_HAVE_TSC
	/* Not rdtscp: some virtual CPUs run it but do not announce it, and
	 * valgrind (bench/callgrind.sh) then stops on it with SIGILL. */
	_mm_lfence();
	return __rdtsc();
#else
	return bench_now_ns();
#endif
}

static BENCH_UNUSED void bench_calibrate_ticks(void)
{
#ifdef BENCH_HAVE_TSC
	/* 3 x 20 ms, keep the median ratio: robust to a preemption. */
	double r[3];
	for (int i = 0; i < 3; i++) {
		uint64_t n0 = bench_now_ns(), t0 = bench_ticks();
		while (bench_now_ns() - n0 < 20000000ULL)
			;
		uint64_t n1 = bench_now_ns(), t1 = bench_ticks();
		r[i] = (double)(n1 - n0) / (double)(t1 - t0);
	}
	double a = r[0], b = r[1], c = r[2];
	bench_tick_ns = (a > b) ? ((b > c) ? b : (a > c ? c : a))
				: ((a > c) ? a : (b > c ? c : b));
	bench_tick_source = "lfence+rdtsc";
#endif
}

/* Cost of one empty timed interval, in ticks (minimum of many). */
static BENCH_UNUSED uint64_t bench_timer_overhead_ticks(void)
{
	uint64_t best = UINT64_MAX;
	for (int i = 0; i < 10000; i++) {
		uint64_t a = bench_ticks();
		uint64_t b = bench_ticks();
		if (b - a < best) best = b - a;
	}
	return best;
}

/* ------------------------------------------------------------------ */
/* Latency samples                                                     */
/* ------------------------------------------------------------------ */

/* Samples are tick deltas stored as uint32_t (saturating). */
typedef struct {
	uint32_t *v;
	size_t n, cap;
} bench_samples_t;

static BENCH_UNUSED void bench_samples_init(bench_samples_t *s, size_t cap)
{
	s->n = 0;
	s->cap = cap;
	s->v = NULL;
	if (cap) {
		/* mmap'ed and pre-touched: the sample buffers never come from
		 * the allocator under test and never fault while timing. */
		s->v = mmap(NULL, cap * sizeof(uint32_t), PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (s->v == MAP_FAILED)
			bench_die("mmap of %zu samples failed", cap);
		memset(s->v, 0, cap * sizeof(uint32_t));
	}
}

static inline void bench_samples_add(bench_samples_t *s, uint64_t ticks)
{
	if (s->n < s->cap)
		s->v[s->n++] = ticks > UINT32_MAX ? UINT32_MAX : (uint32_t)ticks;
}

static int bench_cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

typedef struct { double p50, p99, p999, max; size_t n; } bench_pct_t;

/* Merge the per-thread sample sets, sort, and take nearest-rank
 * percentiles, converted to ns. */
static BENCH_UNUSED bench_pct_t bench_percentiles(bench_samples_t *sets, int nsets)
{
	bench_pct_t p = {0, 0, 0, 0, 0};
	size_t total = 0;
	for (int i = 0; i < nsets; i++)
		total += sets[i].n;
	if (!total)
		return p;
	uint32_t *all = mmap(NULL, total * sizeof(uint32_t), PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (all == MAP_FAILED)
		bench_die("mmap for percentiles failed");
	size_t k = 0;
	for (int i = 0; i < nsets; i++) {
		memcpy(all + k, sets[i].v, sets[i].n * sizeof(uint32_t));
		k += sets[i].n;
	}
	qsort(all, total, sizeof(uint32_t), bench_cmp_u32);
#define BENCH_RANK(q) all[(size_t)((q) * (double)(total - 1) + 0.5)]
	p.p50 = BENCH_RANK(0.50) * bench_tick_ns;
	p.p99 = BENCH_RANK(0.99) * bench_tick_ns;
	p.p999 = BENCH_RANK(0.999) * bench_tick_ns;
	p.max = all[total - 1] * bench_tick_ns;
#undef BENCH_RANK
	p.n = total;
	munmap(all, total * sizeof(uint32_t));
	return p;
}

/* ------------------------------------------------------------------ */
/* Start barrier                                                       */
/* ------------------------------------------------------------------ */

/* A spinning barrier would waste the 2 cores when threads outnumber CPUs,
 * so this is pthread_barrier_t; the timed region starts when the last
 * thread arrives (the main thread takes the start time after it too). */
typedef struct {
	pthread_barrier_t b;
} bench_barrier_t;

static BENCH_UNUSED void bench_barrier_init(bench_barrier_t *b, unsigned n)
{
	if (pthread_barrier_init(&b->b, NULL, n))
		bench_die("pthread_barrier_init failed");
}

static BENCH_UNUSED void bench_barrier_wait(bench_barrier_t *b)
{
	pthread_barrier_wait(&b->b);
}

/* ------------------------------------------------------------------ */
/* Resource usage                                                      */
/* ------------------------------------------------------------------ */

typedef struct {
	long maxrss_kb;   /* getrusage ru_maxrss */
	long minflt;      /* ru_minflt */
	long majflt;      /* ru_majflt */
	double utime, stime;
	long vmhwm_kb;    /* /proc/self/status VmHWM */
	long vmrss_kb;    /* /proc/self/status VmRSS */
} bench_usage_t;

static BENCH_UNUSED long bench_status_kb(const char *key)
{
	FILE *f = fopen("/proc/self/status", "r");
	if (!f)
		return -1;
	char line[256];
	size_t kl = strlen(key);
	long v = -1;
	while (fgets(line, sizeof line, f)) {
		if (!strncmp(line, key, kl) && line[kl] == ':') {
			v = strtol(line + kl + 1, NULL, 10);
			break;
		}
	}
	fclose(f);
	return v;
}

static BENCH_UNUSED bench_usage_t bench_usage(void)
{
	bench_usage_t u;
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	u.maxrss_kb = ru.ru_maxrss;
	u.minflt = ru.ru_minflt;
	u.majflt = ru.ru_majflt;
	u.utime = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6;
	u.stime = ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
	u.vmhwm_kb = bench_status_kb("VmHWM");
	u.vmrss_kb = bench_status_kb("VmRSS");
	return u;
}

/* ------------------------------------------------------------------ */
/* Which allocator is serving malloc?                                  */
/* ------------------------------------------------------------------ */

static char bench_malloc_lib[PATH_MAX];
static char bench_alloc_version[128];

/* dlsym returns void *; ISO C has no cast between object and function
 * pointers, so go through memcpy (POSIX guarantees they have one size). */
typedef void (*bench_fn_t)(void);
static bench_fn_t bench_dlsym_fn(const char *name)
{
	void *p = dlsym(RTLD_DEFAULT, name);
	bench_fn_t f;
	memcpy(&f, &p, sizeof f);
	return f;
}
static void *bench_fn_addr(bench_fn_t f)
{
	void *p;
	memcpy(&p, &f, sizeof p);
	return p;
}

static const char *bench_lib_of(void *addr)
{
	Dl_info di;
	if (!addr || !dladdr(addr, &di) || !di.dli_fname)
		return NULL;
	return di.dli_fname;
}

/* Resolves malloc/free/realloc/calloc the way the program's own calls
 * resolve them (global lookup order: executable, LD_PRELOAD objects,
 * then libc), checks they all live in one object, and checks that the
 * address our direct call to malloc goes to is the same one.  Prints
 * malloc_lib=..., alloc_version=...; exits on a mismatch. */
static BENCH_UNUSED void bench_report_allocator(FILE *out)
{
	static const char *const names[] = { "malloc", "free", "calloc", "realloc" };
	const char *lib0 = NULL;
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		void *sym = dlsym(RTLD_DEFAULT, names[i]);
		const char *lib = bench_lib_of(sym);
		if (!lib)
			bench_die("cannot locate the object providing %s", names[i]);
		if (!lib0)
			lib0 = lib;
		else if (strcmp(lib0, lib))
			bench_die("%s comes from %s but malloc from %s", names[i], lib, lib0);
	}
	/* The address this executable's own call to malloc binds to. */
	void *(*volatile direct)(size_t) = malloc;
	const char *dl = bench_lib_of(bench_fn_addr((bench_fn_t)direct));
	if (!dl || strcmp(dl, lib0))
		bench_die("direct malloc binds to %s, dlsym finds %s",
			  dl ? dl : "?", lib0);
	/* RTLD_NEXT from the executable: the first definition after it. */
	const char *nx = bench_lib_of(dlsym(RTLD_NEXT, "malloc"));
	if (!nx || strcmp(nx, lib0))
		bench_die("RTLD_NEXT malloc is in %s, RTLD_DEFAULT in %s",
			  nx ? nx : "?", lib0);
	snprintf(bench_malloc_lib, sizeof bench_malloc_lib, "%s", lib0);

	/* A version string where the allocator offers one. */
	const char *(*fancy_version)(void) =
		(const char *(*)(void))bench_dlsym_fn("fancy_version");
	int (*mi_version)(void) = (int (*)(void))bench_dlsym_fn("mi_version");
	const char *(*tc_version)(int *, int *, const char **) =
		(const char *(*)(int *, int *, const char **))bench_dlsym_fn("tc_version");
	int (*mallctl)(const char *, void *, size_t *, void *, size_t) =
		(int (*)(const char *, void *, size_t *, void *, size_t))bench_dlsym_fn("mallctl");
	const char *jever = NULL;
	size_t sz = sizeof jever;
	if (fancy_version && !strcmp(bench_lib_of(bench_fn_addr((bench_fn_t)fancy_version)), lib0))
		snprintf(bench_alloc_version, sizeof bench_alloc_version, "fancy-%s", fancy_version());
	else if (mi_version)
		snprintf(bench_alloc_version, sizeof bench_alloc_version, "mimalloc-%d", mi_version());
	else if (tc_version) {
		int ma, mi;
		const char *pt;
		snprintf(bench_alloc_version, sizeof bench_alloc_version, "%s",
			 tc_version(&ma, &mi, &pt));
		for (char *c = bench_alloc_version; *c; c++)
			if (*c == ' ') *c = '-';
	} else if (mallctl && mallctl("version", &jever, &sz, NULL, 0) == 0 && jever)
		snprintf(bench_alloc_version, sizeof bench_alloc_version, "jemalloc-%.60s", jever);
	else
#ifdef __GLIBC__
		snprintf(bench_alloc_version, sizeof bench_alloc_version, "glibc-%s",
			 gnu_get_libc_version());
#else
		/* musl has no version call; its malloc is the libc's own. */
		snprintf(bench_alloc_version, sizeof bench_alloc_version, "libc-%s",
			 bench_lib_of(bench_fn_addr((bench_fn_t)malloc)));
#endif
	if (out) {
		fprintf(out, "malloc_lib=%s\n", bench_malloc_lib);
		fprintf(out, "alloc_version=%s\n", bench_alloc_version);
#if defined(__clang__)
		fprintf(out, "cc=clang %s\n", __clang_version__);
#elif defined(__GNUC__)
		fprintf(out, "cc=gcc %s\n", __VERSION__);
#else
		fprintf(out, "cc=unknown\n");
#endif
	}
}

/* Keep the compiler from dropping a store-only buffer. */
static inline void bench_escape(void *p)
{
	__asm__ volatile("" : : "g"(p) : "memory");
}

#endif /* FA_BENCH_COMMON_H */
