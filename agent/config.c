// SPDX-License-Identifier: GPL-2.0-only
/* Agent configuration: `key = value` file plus flags that override it. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "netutil.h"
#include "source_ctrl.h"

static void seterr(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

void agent_config_defaults(struct agent_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->pin_dir, sizeof(cfg->pin_dir), "%s", XVPC_PIN_DIR);
	cfg->mode = XVPC_UNDERLAY_TC;
	cfg->log_level = XVPC_LOG_INFO;
	cfg->resync_s = 30;
	cfg->learn_idle_s = 300;
	cfg->ctrl_batch_ms = AGENT_CTRL_BATCH_MS_DEFAULT;
	xvpc_parse_ip(XVPC_PROBE_ADDR_DEFAULT, &cfg->probe_ip);
	cfg->probe_port_min = XVPC_PROBE_PORT_MIN_DEFAULT;
	cfg->probe_port_max = XVPC_PROBE_PORT_MAX_DEFAULT;
	if (gethostname(cfg->node_name, sizeof(cfg->node_name) - 1))
		snprintf(cfg->node_name, sizeof(cfg->node_name), "node");
}

static int set_str(char *dst, size_t size, const char *key, const char *v,
		   char *err, size_t errlen)
{
	if (!*v) {
		seterr(err, errlen, "%s: must not be empty", key);
		return -EINVAL;
	}
	if (strlen(v) >= size) {
		seterr(err, errlen, "%s: \"%s\" is longer than %zu characters",
		       key, v, size - 1);
		return -EINVAL;
	}
	strcpy(dst, v);
	return 0;
}

static int set_controllers(struct agent_config *cfg, const char *v, char *err,
			   size_t errlen)
{
	const char *p = v;

	cfg->n_controllers = 0;
	while (*p) {
		size_t len = strcspn(p, ",");
		char *url;

		if (cfg->n_controllers == AGENT_MAX_CONTROLLERS) {
			seterr(err, errlen, "controller: more than %d URLs",
			       AGENT_MAX_CONTROLLERS);
			return -EINVAL;
		}
		if (!len || len >= AGENT_URL_MAX) {
			seterr(err, errlen,
			       "controller: empty or too long URL in \"%s\"",
			       v);
			return -EINVAL;
		}
		url = cfg->controllers[cfg->n_controllers++];
		memcpy(url, p, len);
		url[len] = '\0';
		if (strncmp(url, "http://", 7) && strncmp(url, "https://", 8)) {
			seterr(err, errlen,
			       "controller: \"%s\" is not an http:// or "
			       "https:// URL",
			       url);
			return -EINVAL;
		}
		p += len;
		if (*p == ',')
			p++;
	}
	if (!cfg->n_controllers) {
		seterr(err, errlen, "controller: no URL given");
		return -EINVAL;
	}
	return 0;
}

/* "ADDR:PORT" or ":PORT" (all addresses). */
static int set_metrics(struct agent_config *cfg, const char *v, char *err,
		       size_t errlen)
{
	const char *colon = strrchr(v, ':');
	__be32 ip;
	char *end;
	long port;

	if (!colon || colon - v >= (long)sizeof(cfg->metrics_addr)) {
		seterr(err, errlen,
		       "metrics: \"%s\" is not ADDR:PORT (e.g. 127.0.0.1:9470)",
		       v);
		return -EINVAL;
	}
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno || *end || end == colon + 1 || port < 1 || port > 65535) {
		seterr(err, errlen, "metrics: port in \"%s\" is not 1 .. 65535",
		       v);
		return -EINVAL;
	}
	memcpy(cfg->metrics_addr, v, colon - v);
	cfg->metrics_addr[colon - v] = '\0';
	if (!cfg->metrics_addr[0])
		strcpy(cfg->metrics_addr, "0.0.0.0");
	if (xvpc_parse_ip(cfg->metrics_addr, &ip)) {
		seterr(err, errlen, "metrics: \"%s\" is not an IPv4 address",
		       cfg->metrics_addr);
		return -EINVAL;
	}
	cfg->metrics_port = port;
	cfg->metrics = true;
	return 0;
}

static int parse_bool(const char *key, const char *v, bool *out, char *err,
		      size_t errlen)
{
	if (!strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "1")) {
		*out = true;
		return 0;
	}
	if (!strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "0")) {
		*out = false;
		return 0;
	}
	seterr(err, errlen, "%s: \"%s\" is not true or false", key, v);
	return -EINVAL;
}

/* "none" (off) or a link-local address (169.254.0.0/16): VMs answer it
 * through their gateway, and it is routed nowhere else. */
static int set_probe_addr(struct agent_config *cfg, const char *v, char *err,
			  size_t errlen)
{
	__be32 ip;

	if (!strcmp(v, "none")) {
		cfg->probe_ip = 0;
		return 0;
	}
	if (xvpc_parse_ip(v, &ip) || (ntohl(ip) >> 16) != 0xa9fe ||
	    (ntohl(ip) & 0xffff) == 0 || (ntohl(ip) & 0xffff) == 0xffff) {
		seterr(err, errlen,
		       "probe_addr: \"%s\" is not a link-local unicast "
		       "address (169.254.0.1 .. 169.254.255.254) or none",
		       v);
		return -EINVAL;
	}
	cfg->probe_ip = ip;
	return 0;
}

/* "MIN-MAX", 1024 <= MIN <= MAX <= 65535. */
static int set_probe_ports(struct agent_config *cfg, const char *v, char *err,
			   size_t errlen)
{
	unsigned int lo, hi;
	int end = 0;

	if (sscanf(v, "%5u-%5u%n", &lo, &hi, &end) != 2 || v[end] ||
	    lo < 1024 || lo > hi || hi > 65535) {
		seterr(err, errlen,
		       "probe_ports: \"%s\" is not MIN-MAX with 1024 <= MIN "
		       "<= MAX <= 65535 (e.g. 60000-60999)",
		       v);
		return -EINVAL;
	}
	cfg->probe_port_min = lo;
	cfg->probe_port_max = hi;
	return 0;
}

/* An integer setting of min .. max (unit named in the message). */
static int set_uint(const char *key, const char *v, long min, long max,
		    const char *unit, unsigned int *out, char *err,
		    size_t errlen)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(v, &end, 10);
	if (errno || *end || end == v || n < min || n > max) {
		seterr(err, errlen, "%s: \"%s\" is not %ld .. %ld %s", key, v,
		       min, max, unit);
		return -EINVAL;
	}
	*out = n;
	return 0;
}

int agent_config_set(struct agent_config *cfg, const char *key, const char *v,
		     char *err, size_t errlen)
{
	if (!strcmp(key, "probe_addr"))
		return set_probe_addr(cfg, v, err, errlen);
	if (!strcmp(key, "probe_ports"))
		return set_probe_ports(cfg, v, err, errlen);
	if (!strcmp(key, "node_name"))
		return set_str(cfg->node_name, sizeof(cfg->node_name), key, v,
			       err, errlen);
	if (!strcmp(key, "underlay"))
		return set_str(cfg->underlay, sizeof(cfg->underlay), key, v,
			       err, errlen);
	if (!strcmp(key, "state"))
		return set_str(cfg->state_path, sizeof(cfg->state_path), key, v,
			       err, errlen);
	if (!strcmp(key, "pin_dir"))
		return set_str(cfg->pin_dir, sizeof(cfg->pin_dir), key, v, err,
			       errlen);
	if (!strcmp(key, "controller"))
		return set_controllers(cfg, v, err, errlen);
	if (!strcmp(key, "token"))
		return set_str(cfg->token, sizeof(cfg->token), key, v, err,
			       errlen);
	if (!strcmp(key, "metrics"))
		return set_metrics(cfg, v, err, errlen);
	if (!strcmp(key, "underlay_mode")) {
		if (!strcmp(v, "tc")) {
			cfg->mode = XVPC_UNDERLAY_TC;
		} else if (!strcmp(v, "xdp")) {
			cfg->mode = XVPC_UNDERLAY_XDP;
		} else {
			seterr(err, errlen,
			       "underlay_mode: \"%s\" is not tc or xdp", v);
			return -EINVAL;
		}
		return 0;
	}
	if (!strcmp(key, "node_ip")) {
		if (xvpc_parse_ip(v, &cfg->node_ip) || !cfg->node_ip) {
			seterr(err, errlen,
			       "node_ip: \"%s\" is not a usable IPv4 address",
			       v);
			return -EINVAL;
		}
		return 0;
	}
	if (!strcmp(key, "log_level")) {
		int l = xvpc_log_parse_level(v);

		if (l < 0) {
			seterr(err, errlen,
			       "log_level: \"%s\" is not error, warn, info or "
			       "debug",
			       v);
			return -EINVAL;
		}
		cfg->log_level = l;
		return 0;
	}
	if (!strcmp(key, "resync_interval"))
		return set_uint(key, v, 0, 86400, "seconds", &cfg->resync_s,
				err, errlen);
	if (!strcmp(key, "controller_batch"))
		return set_uint(key, v, 0, 10000, "milliseconds",
				&cfg->ctrl_batch_ms, err, errlen);
	if (!strcmp(key, "learn_idle"))
		return set_uint(key, v, 1, 86400, "seconds", &cfg->learn_idle_s,
				err, errlen);
	if (!strcmp(key, "once"))
		return parse_bool(key, v, &cfg->once, err, errlen);
	seterr(err, errlen, "unknown setting \"%s\"", key);
	return -EINVAL;
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' ||
			 e[-1] == '\n'))
		*--e = '\0';
	return s;
}

int agent_config_parse_text(struct agent_config *cfg, const char *text,
			    const char *origin, char *err, size_t errlen)
{
	char *copy = strdup(text), *line, *save = NULL, *next;
	char msg[AGENT_ERR_LEN];
	int lineno = 0, ret = 0;

	if (!copy)
		return -ENOMEM;
	for (line = copy; line; line = next) {
		char *eq, *key, *val;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		lineno++;
		line = trim(line);
		if (!*line || *line == '#')
			continue;
		eq = strchr(line, '=');
		if (!eq) {
			seterr(err, errlen,
			       "%s:%d: expected `key = value`, got \"%s\"",
			       origin, lineno, line);
			ret = -EINVAL;
			break;
		}
		*eq = '\0';
		key = trim(line);
		val = trim(eq + 1);
		/* Optional double quotes around the value. */
		if (val[0] == '"' && strlen(val) >= 2 &&
		    val[strlen(val) - 1] == '"') {
			val[strlen(val) - 1] = '\0';
			val++;
		}
		ret = agent_config_set(cfg, key, val, msg, sizeof(msg));
		if (ret) {
			seterr(err, errlen, "%s:%d: %s", origin, lineno, msg);
			break;
		}
	}
	(void)save;
	free(copy);
	return ret;
}

int agent_config_parse_file(struct agent_config *cfg, const char *path,
			    char *err, size_t errlen)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f;
	int ret;

	f = fopen(path, "r");
	if (!f) {
		ret = -errno;
		seterr(err, errlen, "config file %s: %s", path, strerror(-ret));
		return ret;
	}
	if (getdelim(&buf, &len, '\0', f) < 0 && !feof(f)) {
		ret = -errno;
		seterr(err, errlen, "config file %s: %s", path, strerror(-ret));
		goto out;
	}
	ret = agent_config_parse_text(cfg, buf ? buf : "", path, err, errlen);
out:
	free(buf);
	fclose(f);
	return ret;
}

int agent_config_check(const struct agent_config *cfg, char *err, size_t errlen)
{
	if (cfg->help)
		return 0;
	if (cfg->uninstall) {
		if (cfg->once) {
			seterr(err, errlen,
			       "--once and --uninstall exclude each other");
			return -EINVAL;
		}
		return 0;
	}
	if (!cfg->underlay[0]) {
		seterr(err, errlen,
		       "no underlay interface: give --underlay IFNAME (or "
		       "`underlay = ` in the config file)");
		return -EINVAL;
	}
	if (cfg->state_path[0] && cfg->n_controllers) {
		seterr(err, errlen,
		       "both a state file and controllers are given: use "
		       "--state for standalone nodes or --controller, not "
		       "both");
		return -EINVAL;
	}
	if (!cfg->state_path[0] && !cfg->n_controllers) {
		seterr(err, errlen,
		       "no source of desired state: give --state FILE "
		       "(standalone) or --controller URL[,URL...]");
		return -EINVAL;
	}
	return 0;
}

enum {
	OPT_CONFIG = 256,
	OPT_NODE_NAME,
	OPT_UNDERLAY,
	OPT_UNDERLAY_MODE,
	OPT_NODE_IP,
	OPT_STATE,
	OPT_CONTROLLER,
	OPT_TOKEN,
	OPT_PIN_DIR,
	OPT_LOG_LEVEL,
	OPT_METRICS,
	OPT_RESYNC,
	OPT_LEARN_IDLE,
	OPT_CTRL_BATCH,
	OPT_PROBE_ADDR,
	OPT_PROBE_PORTS,
	OPT_ONCE,
	OPT_UNINSTALL,
	OPT_HELP,
};

static const struct option long_opts[] = {
	{"config", required_argument, NULL, OPT_CONFIG},
	{"node-name", required_argument, NULL, OPT_NODE_NAME},
	{"underlay", required_argument, NULL, OPT_UNDERLAY},
	{"underlay-mode", required_argument, NULL, OPT_UNDERLAY_MODE},
	{"node-ip", required_argument, NULL, OPT_NODE_IP},
	{"state", required_argument, NULL, OPT_STATE},
	{"controller", required_argument, NULL, OPT_CONTROLLER},
	{"token", required_argument, NULL, OPT_TOKEN},
	{"pin-dir", required_argument, NULL, OPT_PIN_DIR},
	{"log-level", required_argument, NULL, OPT_LOG_LEVEL},
	{"metrics", required_argument, NULL, OPT_METRICS},
	{"resync-interval", required_argument, NULL, OPT_RESYNC},
	{"learn-idle", required_argument, NULL, OPT_LEARN_IDLE},
	{"controller-batch", required_argument, NULL, OPT_CTRL_BATCH},
	{"probe-addr", required_argument, NULL, OPT_PROBE_ADDR},
	{"probe-ports", required_argument, NULL, OPT_PROBE_PORTS},
	{"once", no_argument, NULL, OPT_ONCE},
	{"uninstall", no_argument, NULL, OPT_UNINSTALL},
	{"help", no_argument, NULL, OPT_HELP},
	{NULL, 0, NULL, 0},
};

/* Flag -> config key. */
static const char *opt_key(int opt)
{
	switch (opt) {
	case OPT_NODE_NAME:
		return "node_name";
	case OPT_UNDERLAY:
		return "underlay";
	case OPT_UNDERLAY_MODE:
		return "underlay_mode";
	case OPT_NODE_IP:
		return "node_ip";
	case OPT_STATE:
		return "state";
	case OPT_CONTROLLER:
		return "controller";
	case OPT_TOKEN:
		return "token";
	case OPT_PIN_DIR:
		return "pin_dir";
	case OPT_LOG_LEVEL:
		return "log_level";
	case OPT_METRICS:
		return "metrics";
	case OPT_RESYNC:
		return "resync_interval";
	case OPT_LEARN_IDLE:
		return "learn_idle";
	case OPT_CTRL_BATCH:
		return "controller_batch";
	case OPT_PROBE_ADDR:
		return "probe_addr";
	case OPT_PROBE_PORTS:
		return "probe_ports";
	default:
		return NULL;
	}
}

int agent_config_load(struct agent_config *cfg, int argc, char **argv,
		      char *err, size_t errlen)
{
	char **args = NULL, msg[AGENT_ERR_LEN];
	const char *config = NULL;
	int ret = 0, opt, i;

	agent_config_defaults(cfg);
	/* The file first, whatever the position of --config, so that flags
	 * override it. */
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--config") && i + 1 < argc)
			config = argv[++i];
		else if (!strncmp(argv[i], "--config=", 9))
			config = argv[i] + 9;
		else if (!strcmp(argv[i], "--"))
			break;
	}
	if (config) {
		if (set_str(cfg->config_path, sizeof(cfg->config_path),
			    "--config", config, err, errlen))
			return -EINVAL;
		ret = agent_config_parse_file(cfg, config, err, errlen);
		if (ret)
			return ret;
	}
	/* The environment over the file, flags over both. */
	if (getenv("XVPC_TOKEN") && *getenv("XVPC_TOKEN") &&
	    set_str(cfg->token, sizeof(cfg->token), "XVPC_TOKEN",
		    getenv("XVPC_TOKEN"), err, errlen))
		return -EINVAL;

	/* getopt_long permutes its argv: work on a copy. */
	args = calloc(argc + 1, sizeof(*args));
	if (!args)
		return -ENOMEM;
	memcpy(args, argv, argc * sizeof(*args));
	optind = 0;
	opterr = 0;
	while ((opt = getopt_long(argc, args, ":", long_opts, NULL)) != -1) {
		const char *key = opt_key(opt);

		if (key) {
			ret = agent_config_set(cfg, key, optarg, msg,
					       sizeof(msg));
			if (ret) {
				size_t kl = strlen(key);
				const char *m = msg;

				/* "key: why" -> "--flag: why" */
				if (!strncmp(msg, key, kl) &&
				    !strncmp(msg + kl, ": ", 2))
					m = msg + kl + 2;
				seterr(err, errlen, "--%s: %s",
				       long_opts[opt - OPT_CONFIG].name, m);
				goto out;
			}
			continue;
		}
		switch (opt) {
		case OPT_CONFIG:
			break;
		case OPT_ONCE:
			cfg->once = true;
			break;
		case OPT_UNINSTALL:
			cfg->uninstall = true;
			break;
		case OPT_HELP:
			cfg->help = true;
			break;
		case ':':
			seterr(err, errlen, "%s needs a value",
			       args[optind - 1]);
			ret = -EINVAL;
			goto out;
		default:
			seterr(err, errlen,
			       "unknown option \"%s\" (see --help)",
			       args[optind - 1]);
			ret = -EINVAL;
			goto out;
		}
	}
	if (optind < argc) {
		seterr(err, errlen, "unexpected argument \"%s\" (see --help)",
		       args[optind]);
		ret = -EINVAL;
		goto out;
	}
	ret = agent_config_check(cfg, err, errlen);
out:
	free(args);
	return ret;
}

void agent_config_usage(FILE *out, const char *prog)
{
	fprintf(out,
		"usage: %s [options]\n"
		"\n"
		"The xvpc node agent: loads and attaches the datapath, keeps "
		"its maps\n"
		"equal to the desired state, drains learning events, serves "
		"metrics.\n"
		"Flags override the config file; docs/agent.md has the "
		"details.\n"
		"\n"
		"  --config FILE          key = value settings (flags win)\n"
		"  --node-name NAME       this node's name (default: host "
		"name)\n"
		"  --underlay IFNAME      underlay interface (required)\n"
		"  --underlay-mode tc|xdp underlay attach mode (default tc)\n"
		"  --node-ip ADDR         underlay address (default: first "
		"IPv4 of\n"
		"                         the underlay)\n"
		"  --state FILE           standalone desired state; re-read on "
		"SIGHUP\n"
		"                         and when the file changes\n"
		"  --controller URL[,URL] controllers to get the desired state "
		"from,\n"
		"                         tried in order (failover)\n"
		"  --token TOKEN          token for the controllers (env "
		"XVPC_TOKEN)\n"
		"  --controller-batch MS  under a sustained change rate, at "
		"most one\n"
		"                         change answer every MS after a "
		"burst of %d\n"
		"                         (default %u; 0: every change at "
		"once)\n"
		"  --pin-dir DIR          bpffs pin directory (default %s)\n"
		"  --log-level LEVEL      error, warn, info (default) or "
		"debug\n"
		"  --metrics ADDR:PORT    serve /metrics (Prometheus) and "
		"/healthz\n"
		"  --resync-interval S    full reconcile every S seconds "
		"(default 30,\n"
		"                         0: only on changes)\n"
		"  --learn-idle S         learning mode: delete learned "
		"entries idle\n"
		"                         longer than S seconds (default "
		"300)\n"
		"  --probe-addr ADDR|none link-local address the agent probes "
		"local\n"
		"                         backend VMs from (default %s)\n"
		"  --probe-ports MIN-MAX  source ports of the probes (default "
		"%u-%u)\n"
		"  --once                 reconcile once and exit, leaving "
		"the\n"
		"                         datapath pinned and attached\n"
		"  --uninstall            detach and unpin everything, then "
		"exit\n"
		"  --help                 this text\n",
		prog, AGENT_CTRL_BURST, AGENT_CTRL_BATCH_MS_DEFAULT,
		XVPC_PIN_DIR, XVPC_PROBE_ADDR_DEFAULT,
		XVPC_PROBE_PORT_MIN_DEFAULT, XVPC_PROBE_PORT_MAX_DEFAULT);
}
