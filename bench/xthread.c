/* xthread.c - producer/consumer cross-thread free.
 *
 * P producer threads malloc blocks, memset them, and hand them over in
 * batches of --batch pointers through a bounded queue (mutex + condition
 * variables, --depth batches) to one of C consumer threads (producer p
 * feeds consumer p % C).  The consumer reads each block and frees it, so
 * every block is freed by a thread other than the one that allocated it.
 * The batch record itself is also malloc'ed by the producer and freed by
 * the consumer.  Sizes follow the ring mix (or --small-only: 16-256 B),
 * pre-generated per producer before timing.
 *
 * --threads N sets P = ceil(N/2), C = max(1, floor(N/2)); --producers and
 * --consumers override.  Throughput is blocks moved per second; malloc
 * latency is sampled in the producers and (remote) free latency in the
 * consumers, every --sample'th call.
 */
#include "bench_common.h"

#include <getopt.h>

static struct {
	unsigned producers, consumers;
	uint64_t ops, seed;
	unsigned batch, depth, sample;
	int small_only;
} cfg = { 0, 0, 500000, 42, 64, 16, 8, 0 };

typedef struct {
	unsigned n;
	void *p[];
} batch_t;

typedef struct {
	pthread_mutex_t mu;
	pthread_cond_t not_empty, not_full;
	batch_t **q;
	unsigned head, count, cap;
	unsigned producers_left;
} queue_t;

typedef struct {
	unsigned id;
	pthread_t tid;
	queue_t *out;            /* producer */
	queue_t *in;             /* consumer */
	uint32_t *sizes;
	bench_samples_t lat;     /* malloc (producer) or free (consumer) */
	uint64_t t_start, t_end, moved, checksum;
} thr_t;

static bench_barrier_t b_ready, b_go, b_done;

static void q_push(queue_t *q, batch_t *b)
{
	pthread_mutex_lock(&q->mu);
	while (q->count == q->cap)
		pthread_cond_wait(&q->not_full, &q->mu);
	q->q[(q->head + q->count) % q->cap] = b;
	q->count++;
	pthread_cond_signal(&q->not_empty);
	pthread_mutex_unlock(&q->mu);
}

/* NULL batch = one producer finished. */
static batch_t *q_pop(queue_t *q)
{
	pthread_mutex_lock(&q->mu);
	while (q->count == 0)
		pthread_cond_wait(&q->not_empty, &q->mu);
	batch_t *b = q->q[q->head];
	q->head = (q->head + 1) % q->cap;
	q->count--;
	pthread_cond_signal(&q->not_full);
	pthread_mutex_unlock(&q->mu);
	return b;
}

static void *producer_main(void *arg)
{
	thr_t *t = arg;
	bench_rng_t rng;
	bench_rng_seed(&rng, cfg.seed, t->id);
	t->sizes = mmap(NULL, cfg.ops * sizeof(uint32_t), PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (t->sizes == MAP_FAILED)
		bench_die("mmap failed");
	for (uint64_t i = 0; i < cfg.ops; i++)
		t->sizes[i] = bench_ring_size(&rng, cfg.small_only);
	bench_samples_init(&t->lat, cfg.sample ? cfg.ops / cfg.sample + 1 : 0);
	free(malloc(16)); /* per-thread allocator set-up, untimed */

	bench_barrier_wait(&b_ready);
	bench_barrier_wait(&b_go);
	t->t_start = bench_now_ns();
	unsigned countdown = cfg.sample ? 1 : 0;
	batch_t *b = NULL;
	for (uint64_t i = 0; i < cfg.ops; i++) {
		if (!b) {
			b = malloc(sizeof(batch_t) + cfg.batch * sizeof(void *));
			if (!b) bench_die("malloc returned NULL");
			b->n = 0;
		}
		size_t sz = t->sizes[i];
		void *p;
		if (countdown && --countdown == 0) {
			countdown = cfg.sample;
			uint64_t t0 = bench_ticks();
			p = malloc(sz);
			uint64_t t1 = bench_ticks();
			bench_samples_add(&t->lat, t1 - t0);
		} else {
			p = malloc(sz);
		}
		if (!p) bench_die("malloc(%zu) returned NULL", sz);
		memset(p, (int)(i & 0xff) | 1, sz);
		b->p[b->n++] = p;
		if (b->n == cfg.batch) {
			q_push(t->out, b);
			b = NULL;
		}
	}
	if (b)
		q_push(t->out, b);
	q_push(t->out, NULL);
	t->t_end = bench_now_ns();
	t->moved = cfg.ops;
	bench_barrier_wait(&b_done);
	return NULL;
}

static void *consumer_main(void *arg)
{
	thr_t *t = arg;
	/* A consumer sees at most the blocks of its producers. */
	unsigned mine = t->in->producers_left;
	size_t cap = cfg.sample ? (size_t)(cfg.ops * mine / cfg.sample + 1) : 0;
	bench_samples_init(&t->lat, cap);
	free(malloc(16));

	bench_barrier_wait(&b_ready);
	bench_barrier_wait(&b_go);
	t->t_start = bench_now_ns();
	unsigned countdown = cfg.sample ? 1 : 0;
	uint64_t sum = 0, moved = 0;
	while (t->in->producers_left) {
		batch_t *b = q_pop(t->in);
		if (!b) {
			t->in->producers_left--; /* only this consumer reads it */
			continue;
		}
		for (unsigned i = 0; i < b->n; i++) {
			void *p = b->p[i];
			sum += *(volatile unsigned char *)p;
			if (countdown && --countdown == 0) {
				countdown = cfg.sample;
				uint64_t t0 = bench_ticks();
				free(p);
				uint64_t t1 = bench_ticks();
				bench_samples_add(&t->lat, t1 - t0);
			} else {
				free(p);
			}
		}
		moved += b->n;
		free(b);
	}
	t->t_end = bench_now_ns();
	t->moved = moved;
	t->checksum = sum;
	bench_barrier_wait(&b_done);
	return NULL;
}

static void usage(FILE *f)
{
	fprintf(f,
"usage: xthread [options]\n"
"  -t, --threads N     total threads: ceil(N/2) producers, max(1,N/2) consumers\n"
"      --producers P   override the producer count\n"
"      --consumers C   override the consumer count\n"
"  -n, --ops N         blocks allocated per producer (default 500000)\n"
"      --batch N       pointers per hand-over (default 64)\n"
"      --depth N       queue capacity in batches per consumer (default 16)\n"
"  -S, --seed N        RNG seed (default 42)\n"
"      --small-only    sizes 16-256 B (default: the ring's 60/30/10 mix)\n"
"      --sample N      time every Nth malloc / free (default 8, 0=off)\n");
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "threads", required_argument, NULL, 't' },
		{ "producers", required_argument, NULL, 'P' },
		{ "consumers", required_argument, NULL, 'C' },
		{ "ops", required_argument, NULL, 'n' },
		{ "batch", required_argument, NULL, 'b' },
		{ "depth", required_argument, NULL, 'd' },
		{ "seed", required_argument, NULL, 'S' },
		{ "small-only", no_argument, NULL, 'm' },
		{ "sample", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned threads = 2;
	int c;
	while ((c = getopt_long(argc, argv, "t:n:S:h", lo, NULL)) != -1) {
		switch (c) {
		case 't': threads = (unsigned)bench_parse_u64("--threads", optarg); break;
		case 'P': cfg.producers = (unsigned)bench_parse_u64("--producers", optarg); break;
		case 'C': cfg.consumers = (unsigned)bench_parse_u64("--consumers", optarg); break;
		case 'n': cfg.ops = bench_parse_u64("--ops", optarg); break;
		case 'b': cfg.batch = (unsigned)bench_parse_u64("--batch", optarg); break;
		case 'd': cfg.depth = (unsigned)bench_parse_u64("--depth", optarg); break;
		case 'S': cfg.seed = bench_parse_u64("--seed", optarg); break;
		case 'm': cfg.small_only = 1; break;
		case 'p': cfg.sample = (unsigned)bench_parse_u64("--sample", optarg); break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) { usage(stderr); return 2; }
	if (threads < 1) bench_die("--threads must be >= 1");
	if (!cfg.producers) cfg.producers = (threads + 1) / 2;
	if (!cfg.consumers) cfg.consumers = threads / 2 ? threads / 2 : 1;
	if (cfg.producers > 2048 || cfg.consumers > 2048) bench_die("too many threads");
	if (cfg.batch < 1 || cfg.depth < 1 || cfg.ops < 1) bench_die("--batch, --depth, --ops must be >= 1");

	bench_report_allocator(stdout);
	bench_calibrate_ticks();
	uint64_t ovh = bench_timer_overhead_ticks();

	unsigned np = cfg.producers, nc = cfg.consumers, n = np + nc;
	queue_t *qs = calloc(nc, sizeof *qs);
	thr_t *t = calloc(n, sizeof *t);
	if (!qs || !t) bench_die("out of memory");
	for (unsigned i = 0; i < nc; i++) {
		pthread_mutex_init(&qs[i].mu, NULL);
		pthread_cond_init(&qs[i].not_empty, NULL);
		pthread_cond_init(&qs[i].not_full, NULL);
		qs[i].cap = cfg.depth;
		qs[i].q = calloc(cfg.depth, sizeof(batch_t *));
		if (!qs[i].q) bench_die("out of memory");
	}
	for (unsigned i = 0; i < np; i++)
		qs[i % nc].producers_left++;
	bench_barrier_init(&b_ready, n + 1);
	bench_barrier_init(&b_go, n + 1);
	bench_barrier_init(&b_done, n + 1);
	for (unsigned i = 0; i < n; i++) {
		t[i].id = i;
		if (i < np) t[i].out = &qs[i % nc];
		else t[i].in = &qs[i - np];
		if (pthread_create(&t[i].tid, NULL, i < np ? producer_main : consumer_main, &t[i]))
			bench_die("pthread_create failed");
	}
	bench_barrier_wait(&b_ready);
	bench_usage_t u0 = bench_usage();
	bench_barrier_wait(&b_go);
	bench_barrier_wait(&b_done);
	bench_usage_t u1 = bench_usage();
	for (unsigned i = 0; i < n; i++)
		pthread_join(t[i].tid, NULL);

	uint64_t t0 = UINT64_MAX, t1 = 0, moved = 0, sum = 0;
	bench_samples_t *ps = calloc(np, sizeof *ps), *cs = calloc(nc, sizeof *cs);
	if (!ps || !cs) bench_die("out of memory");
	for (unsigned i = 0; i < n; i++) {
		if (t[i].t_start < t0) t0 = t[i].t_start;
		if (t[i].t_end > t1) t1 = t[i].t_end;
		if (i < np) ps[i] = t[i].lat;
		else { cs[i - np] = t[i].lat; moved += t[i].moved; sum += t[i].checksum; }
	}
	if (moved != cfg.ops * np)
		bench_die("consumers freed %" PRIu64 " blocks, producers made %" PRIu64,
			  moved, cfg.ops * np);
	double secs = (t1 - t0) / 1e9;
	bench_pct_t pm = bench_percentiles(ps, (int)np);
	bench_pct_t pf = bench_percentiles(cs, (int)nc);
	printf("bench=xthread\nthreads=%u\nproducers=%u\nconsumers=%u\n", np + nc, np, nc);
	printf("ops=%" PRIu64 "\nbatch=%u\ndepth=%u\nseed=%" PRIu64 "\nsmall_only=%d\nsample_every=%u\n",
	       cfg.ops, cfg.batch, cfg.depth, cfg.seed, cfg.small_only, cfg.sample);
	printf("tick_source=%s\ntimer_overhead_ns=%.1f\n", bench_tick_source, ovh * bench_tick_ns);
	printf("elapsed_s=%.6f\nmops=%.4f\n", secs, (double)moved / secs / 1e6);
	printf("malloc_p50_ns=%.0f\nmalloc_p99_ns=%.0f\nmalloc_p999_ns=%.0f\nmalloc_max_ns=%.0f\n",
	       pm.p50, pm.p99, pm.p999, pm.max);
	printf("free_p50_ns=%.0f\nfree_p99_ns=%.0f\nfree_p999_ns=%.0f\nfree_max_ns=%.0f\n",
	       pf.p50, pf.p99, pf.p999, pf.max);
	printf("maxrss_kb=%ld\nvmhwm_kb=%ld\n", u1.maxrss_kb, u1.vmhwm_kb);
	printf("minflt=%ld\nutime_s=%.3f\nstime_s=%.3f\n", u1.minflt - u0.minflt,
	       u1.utime - u0.utime, u1.stime - u0.stime);
	printf("checksum=%" PRIu64 "\n", sum);
	return 0;
}
