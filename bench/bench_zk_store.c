// SPDX-License-Identifier: GPL-2.0-only
/*
 * ZooKeeper store write throughput, without HTTP: writer threads commit
 * port-creation-shaped transactions (the ops of controller/api_objects.c
 * port_create_once: version checks of the subnet and the node records,
 * five creates, ~300 bytes of values) through store_zk (group commit) for
 * a few seconds, against throw-away ZooKeeper servers on loopback
 * (tests/zk_harness.sh, normal fsync).
 *
 * usage: bench_zk_store [--members 1|3] [--threads N] [--secs S] [--single]
 * --single turns group commit off (a multi per commit), for comparison.
 * Prints one JSON object: commits/s, failures, and the commits per
 * ZooKeeper multi.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "controller/store.h"
#include "log.h"
#include "tests/zk_harness.h"

#define MAX_THREADS 512

struct bench {
	struct store *st;
	double secs;
	int members;
	bool single;
	atomic_bool stop;
	atomic_long ok, failed;
};

struct worker {
	struct bench *b;
	int id;
	pthread_t th;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int port_txn(struct bench *b, int id, long i)
{
	char keys[5][96], val[320];
	struct store_op ops[7];
	uint64_t sver, nver;
	int err;

	err = store_get(b->st, "subnet/0000000001", NULL, &sver);
	err = err ?: store_get(b->st, "node/n1", NULL, &nver);
	if (err)
		return err;
	snprintf(keys[0], sizeof(keys[0]), "port/%04d%06ld", id, i);
	snprintf(keys[1], sizeof(keys[1]), "tp/0000000001/%04d%06ld", id, i);
	snprintf(keys[2], sizeof(keys[2]), "vp/0000000001/%04d%06ld", id, i);
	snprintf(keys[3], sizeof(keys[3]), "sip/0000000001/%04d%06ld", id, i);
	snprintf(keys[4], sizeof(keys[4]), "np/n1/%04d%06ld", id, i);
	snprintf(val, sizeof(val),
		 "{\"id\":%d%06ld,\"tenant\":1,\"vpc\":1,\"subnet\":1,"
		 "\"name\":\"\",\"ip\":\"10.0.0.1\",\"mac\":\"02:00:00:00:00:"
		 "01\","
		 "\"node\":\"n1\",\"ifname\":\"tap%d\"}",
		 id, i, id);
	ops[0] = (struct store_op){STORE_CHECK, "subnet/0000000001", NULL, 0,
				   sver};
	ops[1] = (struct store_op){STORE_PUT, keys[0], val, strlen(val),
				   STORE_ABSENT};
	for (int k = 1; k < 5; k++)
		ops[k + 1] = (struct store_op){STORE_PUT, keys[k], "{}", 2,
					       STORE_ABSENT};
	ops[6] = (struct store_op){STORE_CHECK, "node/n1", NULL, 0, nver};
	return store_txn(b->st, ops, 7, NULL, NULL);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	for (long i = 0; !atomic_load(&w->b->stop); i++) {
		if (port_txn(w->b, w->id, i))
			atomic_fetch_add(&w->b->failed, 1);
		else
			atomic_fetch_add(&w->b->ok, 1);
	}
	return NULL;
}

static int seed(struct store *st)
{
	struct store_op ops[2] = {
		{STORE_PUT, "subnet/0000000001", "{\"cidr\":\"10.0.0.0/8\"}",
		 21, STORE_ANY},
		{STORE_PUT, "node/n1", "{}", 2, STORE_ANY},
	};

	return store_txn(st, ops, 2, NULL, NULL);
}

static int run(struct bench *b, int threads)
{
	static struct worker w[MAX_THREADS];
	uint64_t b0, t0, b1, t1;
	double start, secs;
	int err = 0, i;

	store_zk_batch_stats(b->st, &b0, &t0);
	start = now_s();
	for (i = 0; i < threads; i++) {
		w[i] = (struct worker){.b = b, .id = i};
		err = pthread_create(&w[i].th, NULL, worker_main, &w[i]);
		if (err)
			break;
	}
	while (now_s() - start < b->secs)
		usleep(10000);
	atomic_store(&b->stop, true);
	while (i-- > 0)
		pthread_join(w[i].th, NULL);
	secs = now_s() - start;
	store_zk_batch_stats(b->st, &b1, &t1);
	printf("{\"members\": %d, \"group_commit\": %s, "
	       "\"threads\": %d, \"commits_per_s\": %.0f, \"failed\": %ld, "
	       "\"commits_per_multi\": %.1f}\n",
	       b->members, b->single ? "false" : "true", threads,
	       atomic_load(&b->ok) / secs, atomic_load(&b->failed),
	       b1 > b0 ? (double)(t1 - t0) / (b1 - b0) : 1.0);
	return err ? -err : 0;
}

int main(int argc, char **argv)
{
	struct bench b = {.secs = 5};
	struct store_zk_opts o = {.root = "/bench"};
	int members = 3, threads = 16, err;
	struct zkh h;

	for (int i = 1; i < argc; i++) {
		const char *val = i + 1 < argc ? argv[i + 1] : "0";

		if (!strcmp(argv[i], "--single")) {
			o.single_commits = true;
			continue;
		}
		if (!strcmp(argv[i], "--members"))
			members = atoi(val);
		else if (!strcmp(argv[i], "--threads"))
			threads = atoi(val);
		else if (!strcmp(argv[i], "--secs"))
			b.secs = atof(val);
		else
			threads = 0; /* unknown option: usage */
		i++;
	}
	if ((members != 1 && members != 3) || threads < 1 ||
	    threads > MAX_THREADS || b.secs <= 0) {
		fprintf(stderr, "usage: bench_zk_store [--members 1|3] "
				"[--threads 1..512] [--secs S] [--single]\n");
		return 2;
	}
	xvpc_log_set_level(XVPC_LOG_WARN);
	if (zkh_start(&h, members)) {
		fprintf(stderr, "bench_zk_store: ZooKeeper did not start\n");
		return 1;
	}
	o.hosts = h.hosts;
	b.members = members;
	b.single = o.single_commits;
	err = store_zk_open(&o, &b.st);
	err = err ?: seed(b.st);
	err = err ?: run(&b, threads);
	if (err)
		fprintf(stderr, "bench_zk_store: %s\n", strerror(-err));
	store_close(b.st);
	zkh_stop(&h);
	return err ? 1 : 0;
}
