// SPDX-License-Identifier: GPL-2.0-only
/* Agent configuration: the file, the flags that override it, and a clear
 * error for every bad setting. */
#include <arpa/inet.h>
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

#include "agent/config.h"
#include "agent/source_ctrl.h"
#include "log.h"

#define ARGV(...) ((char *[]){"xvpc-agent", __VA_ARGS__, NULL})
#define ARGC(...) ((int)(sizeof(ARGV(__VA_ARGS__)) / sizeof(char *)) - 1)
#define LOAD(cfg, err, ...)                                               \
	agent_config_load(cfg, ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), err, \
			  sizeof(err))

struct fixture {
	char path[64];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	int fd;

	if (!f)
		return -1;
	strcpy(f->path, "/tmp/xvpc-test-config.XXXXXX");
	fd = mkstemp(f->path);
	if (fd < 0) {
		free(f);
		return -1;
	}
	close(fd);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	unlink(f->path);
	free(f);
	return 0;
}

static void write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

static void test_defaults(void **unused)
{
	struct agent_config cfg;
	char err[AGENT_ERR_LEN] = "";

	(void)unused;
	assert_int_equal(
		LOAD(&cfg, err, "--underlay", "eth0", "--state", "/tmp/s.json"),
		0);
	assert_string_equal(cfg.underlay, "eth0");
	assert_string_equal(cfg.state_path, "/tmp/s.json");
	assert_string_equal(cfg.pin_dir, "/sys/fs/bpf/xvpc");
	assert_int_equal(cfg.mode, XVPC_UNDERLAY_TC);
	assert_int_equal(cfg.node_ip, 0);
	assert_int_equal(cfg.log_level, XVPC_LOG_INFO);
	assert_false(cfg.metrics);
	assert_false(cfg.once);
	assert_int_equal(cfg.resync_s, 30);
	assert_int_equal(cfg.ctrl_batch_ms, AGENT_CTRL_BATCH_MS_DEFAULT);
	assert_int_equal(cfg.probe_ip, inet_addr("169.254.169.250"));
	assert_int_equal(cfg.probe_port_min, 60000);
	assert_int_equal(cfg.probe_port_max, 60999);
	assert_true(cfg.node_name[0] != '\0'); /* the host name */
}

static void test_all_flags(void **unused)
{
	struct agent_config cfg;
	char err[AGENT_ERR_LEN] = "";

	(void)unused;
	assert_int_equal(
		LOAD(&cfg, err, "--node-name", "n7", "--underlay", "ul0",
		     "--underlay-mode", "xdp", "--node-ip", "192.168.1.7",
		     "--controller", "http://a:8470,https://b:8470",
		     "--pin-dir", "/sys/fs/bpf/x", "--log-level", "debug",
		     "--metrics", "127.0.0.1:9470", "--resync-interval", "0",
		     "--probe-addr", "169.254.1.2", "--probe-ports",
		     "40000-40009", "--controller-batch", "0", "--once"),
		0);
	assert_int_equal(cfg.ctrl_batch_ms, 0);
	assert_int_equal(cfg.probe_ip, inet_addr("169.254.1.2"));
	assert_int_equal(cfg.probe_port_min, 40000);
	assert_int_equal(cfg.probe_port_max, 40009);
	assert_string_equal(cfg.node_name, "n7");
	assert_int_equal(cfg.mode, XVPC_UNDERLAY_XDP);
	assert_int_equal(cfg.node_ip, inet_addr("192.168.1.7"));
	assert_int_equal(cfg.n_controllers, 2);
	assert_string_equal(cfg.controllers[1], "https://b:8470");
	assert_string_equal(cfg.pin_dir, "/sys/fs/bpf/x");
	assert_int_equal(cfg.log_level, XVPC_LOG_DEBUG);
	assert_true(cfg.metrics);
	assert_string_equal(cfg.metrics_addr, "127.0.0.1");
	assert_int_equal(cfg.metrics_port, 9470);
	assert_int_equal(cfg.resync_s, 0);
	assert_true(cfg.once);
	/* --flag=value works too. */
	assert_int_equal(LOAD(&cfg, err, "--underlay=ul1", "--state=/x",
			      "--metrics=:9999"),
			 0);
	assert_string_equal(cfg.underlay, "ul1");
	assert_string_equal(cfg.metrics_addr, "0.0.0.0");
	assert_int_equal(LOAD(&cfg, err, "--underlay=ul1", "--state=/x",
			      "--probe-addr=none"),
			 0);
	assert_int_equal(cfg.probe_ip, 0);
}

static void test_file_and_override(void **state)
{
	struct fixture *f = *state;
	struct agent_config cfg;
	char err[AGENT_ERR_LEN] = "";

	write_file(f->path, "# agent config\n"
			    "\n"
			    "node_name = fromfile\n"
			    "underlay=ul0\n"
			    "  underlay_mode = xdp  \n"
			    "state = \"/etc/xvpc/state.json\"\n"
			    "log_level = warn\n"
			    "metrics = 10.1.2.3:9100\n");
	/* The flag wins over the file, wherever --config is. */
	assert_int_equal(
		LOAD(&cfg, err, "--log-level", "debug", "--config", f->path),
		0);
	assert_string_equal(cfg.config_path, f->path);
	assert_string_equal(cfg.node_name, "fromfile");
	assert_string_equal(cfg.underlay, "ul0");
	assert_int_equal(cfg.mode, XVPC_UNDERLAY_XDP);
	assert_string_equal(cfg.state_path, "/etc/xvpc/state.json");
	assert_int_equal(cfg.log_level, XVPC_LOG_DEBUG);
	assert_int_equal(cfg.metrics_port, 9100);
	assert_int_equal(
		LOAD(&cfg, err, "--config", f->path, "--underlay-mode", "tc"),
		0);
	assert_int_equal(cfg.mode, XVPC_UNDERLAY_TC);
}

static void expect_load_err(const char *want, int argc, char **argv)
{
	struct agent_config cfg;
	char err[AGENT_ERR_LEN] = "";
	int ret = agent_config_load(&cfg, argc, argv, err, sizeof(err));

	if (ret >= 0 || !strstr(err, want))
		fail_msg("ret %d, error \"%s\", want \"%s\"", ret, err, want);
}

#define EXPECT_ERR(want, ...) \
	expect_load_err(want, ARGC(__VA_ARGS__), ARGV(__VA_ARGS__))

static void test_flag_errors(void **unused)
{
	(void)unused;
	EXPECT_ERR("no underlay interface", "--state", "/s");
	EXPECT_ERR("no source of desired state", "--underlay", "ul0");
	EXPECT_ERR("both a state file and controllers", "--underlay", "ul0",
		   "--state", "/s", "--controller", "http://c:1");
	EXPECT_ERR("--underlay-mode: \"foo\" is not tc or xdp",
		   "--underlay-mode", "foo");
	EXPECT_ERR("--node-ip: \"1.2.3\" is not a usable IPv4", "--node-ip",
		   "1.2.3");
	EXPECT_ERR("--node-ip", "--node-ip", "0.0.0.0");
	EXPECT_ERR("--log-level: \"loud\" is not error, warn, info or debug",
		   "--log-level", "loud");
	EXPECT_ERR("--metrics: \"9470\" is not ADDR:PORT", "--metrics", "9470");
	EXPECT_ERR("--metrics: port in \"1.2.3.4:0\"", "--metrics",
		   "1.2.3.4:0");
	EXPECT_ERR("--metrics: port in \"1.2.3.4:70000\"", "--metrics",
		   "1.2.3.4:70000");
	EXPECT_ERR("--metrics: \"localhost\" is not an IPv4", "--metrics",
		   "localhost:9470");
	EXPECT_ERR("--controller: \"ftp://x\" is not an http", "--controller",
		   "ftp://x");
	EXPECT_ERR("--controller: empty", "--controller", "http://a,,http://b");
	EXPECT_ERR("--resync-interval: \"-1\"", "--resync-interval", "-1");
	EXPECT_ERR("--controller-batch: \"20000\" is not 0 .. 10000",
		   "--controller-batch", "20000");
	EXPECT_ERR("--underlay: \"0123456789abcdefXYZ\" is longer than 15",
		   "--underlay", "0123456789abcdefXYZ");
	EXPECT_ERR("--underlay needs a value", "--underlay");
	EXPECT_ERR("unknown option \"--bogus\"", "--bogus");
	EXPECT_ERR("unexpected argument \"extra\"", "--underlay", "ul0",
		   "--state", "/s", "extra");
	EXPECT_ERR("--probe-addr: \"10.0.0.1\" is not a link-local",
		   "--probe-addr", "10.0.0.1");
	EXPECT_ERR("--probe-addr: \"169.254.0.0\"", "--probe-addr",
		   "169.254.0.0");
	EXPECT_ERR("--probe-ports: \"60999-60000\" is not MIN-MAX",
		   "--probe-ports", "60999-60000");
	EXPECT_ERR("--probe-ports: \"80-90\"", "--probe-ports", "80-90");
	EXPECT_ERR("--probe-ports: \"60000\"", "--probe-ports", "60000");
	EXPECT_ERR("--probe-ports: \"60000-70000\"", "--probe-ports",
		   "60000-70000");
	EXPECT_ERR("--once and --uninstall exclude each other", "--once",
		   "--uninstall");
	EXPECT_ERR("config file /nonexistent/agent.conf: No such file",
		   "--config", "/nonexistent/agent.conf");
}

static void expect_file_err(const char *path, const char *text,
			    const char *want)
{
	struct agent_config cfg;
	char err[AGENT_ERR_LEN] = "";
	int ret;

	write_file(path, text);
	agent_config_defaults(&cfg);
	ret = agent_config_parse_file(&cfg, path, err, sizeof(err));
	if (ret != -EINVAL || !strstr(err, want))
		fail_msg("file \"%s\": ret %d, error \"%s\", want \"%s\"", text,
			 ret, err, want);
}

static void test_file_errors(void **state)
{
	struct fixture *f = *state;
	char want[128];

	expect_file_err(f->path, "underlay = ul0\nbogus = 1\n",
			"unknown setting \"bogus\"");
	snprintf(want, sizeof(want), "%s:2: unknown setting", f->path);
	expect_file_err(f->path, "underlay = ul0\nbogus = 1\n", want);
	expect_file_err(f->path, "# c\nunderlay ul0\n",
			":2: expected `key = value`");
	expect_file_err(f->path, "underlay_mode = both\n",
			":1: underlay_mode: \"both\" is not tc or xdp");
	expect_file_err(f->path, "underlay =\n", ":1: underlay: must not be");
	expect_file_err(f->path, "once = maybe\n", "once: \"maybe\" is not");
	expect_file_err(f->path, "node_ip = 300.1.1.1\n", ":1: node_ip");
}

static void test_uninstall_needs_little(void **unused)
{
	struct agent_config cfg;
	char err[AGENT_ERR_LEN] = "";

	(void)unused;
	/* --uninstall only needs the pin dir (and optionally the underlay) */
	assert_int_equal(LOAD(&cfg, err, "--uninstall", "--pin-dir", "/x"), 0);
	assert_true(cfg.uninstall);
	assert_int_equal(LOAD(&cfg, err, "--help"), 0);
	assert_true(cfg.help);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_all_flags),
		cmocka_unit_test_setup_teardown(test_file_and_override, setup,
						teardown),
		cmocka_unit_test(test_flag_errors),
		cmocka_unit_test_setup_teardown(test_file_errors, setup,
						teardown),
		cmocka_unit_test(test_uninstall_needs_little),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
