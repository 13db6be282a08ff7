// SPDX-License-Identifier: GPL-2.0-only
/* Team membership and leader election against a real ZooKeeper server:
 * the first member leads; when the leader's session closes its successor
 * takes over and the other members are not woken (no herd); a member that
 * asks for membership events sees joins, leaves and leader changes. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "controller/zk.h"
#include "log.h"
#include "tests/zk_harness.h"

#define MEMBERS 4

static struct zkh srv;

struct member {
	struct zk *zk;
	struct zk_team *team;
	int leader_events; /* became leader */
};

struct tracker {
	int joined, left, leader_changes;
	char leader[32];
	char last_left[32];
};

static int group_setup(void **state)
{
	(void)state;
	xvpc_log_set_level(XVPC_LOG_WARN);
	return zkh_start(&srv, 1) ? -1 : 0;
}

static int group_teardown(void **state)
{
	int err = zkh_stop(&srv);

	(void)state;
	if (zkh_procs(&srv) > 0)
		return -1;
	return err ? -1 : 0;
}

static int open_session(struct zk **zk)
{
	struct zk_config cfg = {
		.hosts = srv.hosts,
		.session_timeout_ms = 4000,
	};

	return zk_open(&cfg, zk);
}

static void on_leader(struct zk_team *t, const struct zk_member *leader,
		      bool is_self, void *arg)
{
	struct member *m = arg;

	(void)t;
	(void)leader;
	if (is_self)
		__atomic_add_fetch(&m->leader_events, 1, __ATOMIC_SEQ_CST);
}

static const struct zk_team_ops election_ops = {
	.leader_changed = on_leader,
};

static void tr_joined(struct zk_team *t, const struct zk_member *m, void *arg)
{
	struct tracker *tr = arg;

	(void)t;
	(void)m;
	__atomic_add_fetch(&tr->joined, 1, __ATOMIC_SEQ_CST);
}

static void tr_left(struct zk_team *t, const struct zk_member *m, void *arg)
{
	struct tracker *tr = arg;

	(void)t;
	snprintf(tr->last_left, sizeof(tr->last_left), "%s", m->name);
	__atomic_add_fetch(&tr->left, 1, __ATOMIC_SEQ_CST);
}

static void tr_leader(struct zk_team *t, const struct zk_member *leader,
		      bool is_self, void *arg)
{
	struct tracker *tr = arg;

	(void)t;
	(void)is_self;
	snprintf(tr->leader, sizeof(tr->leader), "%s",
		 leader ? leader->name : "");
	__atomic_add_fetch(&tr->leader_changes, 1, __ATOMIC_SEQ_CST);
}

static const struct zk_team_ops tracker_ops = {
	.member_joined = tr_joined,
	.member_left = tr_left,
	.leader_changed = tr_leader,
};

static bool is_leader(void *arg)
{
	return zk_team_is_leader(arg);
}

static bool woken(void *arg)
{
	return zk_team_wakeups(arg) > 0;
}

static bool left_twice(void *arg)
{
	return __atomic_load_n(&((struct tracker *)arg)->left,
			       __ATOMIC_SEQ_CST) >= 2;
}

static void test_election(void **state)
{
	struct member m[MEMBERS] = {0};
	struct zk_member *list;
	char addr[32];
	int n;

	(void)state;
	for (int i = 0; i < MEMBERS; i++) {
		assert_int_equal(open_session(&m[i].zk), 0);
		snprintf(addr, sizeof(addr), "10.0.0.%d:8080", i + 1);
		assert_int_equal(zk_team_join(m[i].zk, "/t1/ctrl", addr,
					      strlen(addr), &election_ops,
					      &m[i], &m[i].team),
				 0);
	}
	/* The first to join leads, from the moment join returns. */
	assert_true(zk_team_is_leader(m[0].team));
	assert_int_equal(m[0].leader_events, 1);
	for (int i = 1; i < MEMBERS; i++)
		assert_false(zk_team_is_leader(m[i].team));

	assert_int_equal(zk_team_members(m[2].team, &list, &n), 0);
	assert_int_equal(n, MEMBERS);
	for (int i = 0; i < MEMBERS; i++) {
		snprintf(addr, sizeof(addr), "10.0.0.%d:8080", i + 1);
		assert_string_equal(list[i].data, addr);
		assert_string_equal(list[i].name, zk_team_self(m[i].team));
	}
	zk_members_free(list, n);

	/* The leader's session closes: member 1 takes over, 2 and 3 sleep. */
	zk_close(m[0].zk);
	m[0].zk = NULL;
	assert_true(zkh_until(is_leader, m[1].team, 10000));
	assert_int_equal(m[1].leader_events, 1);
	assert_int_equal(zk_team_wakeups(m[1].team), 1);
	assert_int_equal(zk_team_wakeups(m[2].team), 0);
	assert_int_equal(zk_team_wakeups(m[3].team), 0);
	assert_false(zk_team_is_leader(m[2].team));

	/* A member in the middle leaves: only its successor wakes, and
	 * re-watches the leader, without taking over. Had the leader's
	 * departure woken member 3 as well, it would count 2 now. */
	assert_int_equal(zk_team_wakeups(m[2].team), 0);
	zk_team_leave(m[2].team);
	m[2].team = NULL;
	assert_true(zkh_until(woken, m[3].team, 10000));
	assert_int_equal(zk_team_wakeups(m[3].team), 1);
	assert_false(zk_team_is_leader(m[3].team));
	assert_int_equal(zk_team_wakeups(m[1].team), 1);
	assert_int_equal(zk_team_list(m[3].zk, "/t1/ctrl", &list, &n), 0);
	assert_int_equal(n, 2);
	zk_members_free(list, n);

	/* Now the leader leaves: 3 leads. */
	zk_team_leave(m[1].team);
	m[1].team = NULL;
	assert_true(zkh_until(is_leader, m[3].team, 10000));
	assert_int_equal(m[3].leader_events, 1);

	for (int i = 1; i < MEMBERS; i++) {
		zk_team_leave(m[i].team);
		zk_close(m[i].zk);
	}
}

static void test_membership_events(void **state)
{
	struct member a = {0}, b = {0};
	struct tracker tr = {0};
	struct zk_team *watcher;
	struct zk *zk;

	(void)state;
	assert_int_equal(open_session(&a.zk), 0);
	assert_int_equal(open_session(&b.zk), 0);
	assert_int_equal(open_session(&zk), 0);
	assert_int_equal(zk_team_join(a.zk, "/t2/ctrl", "a", 1, &election_ops,
				      &a, &a.team),
			 0);
	assert_int_equal(zk_team_join(b.zk, "/t2/ctrl", "b", 1, &election_ops,
				      &b, &b.team),
			 0);
	assert_int_equal(zk_team_join(zk, "/t2/ctrl", "w", 1, &tracker_ops, &tr,
				      &watcher),
			 0);
	/* Everyone present at join time is reported, itself included. */
	assert_int_equal(tr.joined, 3);
	assert_int_equal(tr.leader_changes, 1);
	assert_string_equal(tr.leader, zk_team_self(a.team));

	zk_team_leave(b.team);
	zk_team_leave(a.team);
	assert_true(zkh_until(left_twice, &tr, 10000));
	assert_true(zkh_until(is_leader, watcher, 10000));
	assert_string_equal(tr.leader, zk_team_self(watcher));
	assert_true(zk_team_is_leader(watcher));

	zk_team_leave(watcher);
	zk_close(zk);
	zk_close(a.zk);
	zk_close(b.zk);
}

static void test_team_bad_input(void **state)
{
	struct zk_team *t = (void *)1;
	struct zk *zk;

	(void)state;
	assert_int_equal(open_session(&zk), 0);
	assert_int_equal(zk_team_join(zk, "rel", "x", 1, NULL, NULL, &t),
			 -EINVAL);
	assert_null(t);
	assert_int_equal(
		zk_team_join(zk, "/t3", "x", ZK_RECORD_MAX + 1, NULL, NULL, &t),
		-EMSGSIZE);
	/* Without callbacks at all: election only, still works. */
	assert_int_equal(zk_team_join(zk, "/t3", "x", 1, NULL, NULL, &t), 0);
	assert_true(zk_team_is_leader(t));
	zk_team_leave(t);
	zk_close(zk);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_election),
		cmocka_unit_test(test_membership_events),
		cmocka_unit_test(test_team_bad_input),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
