// SPDX-License-Identifier: GPL-2.0-only
/* State source: a JSON file, watched with inotify. */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "log.h"
#include "source.h"

struct file_source {
	struct agent_source s;
	char path[PATH_MAX];
	char dir[PATH_MAX];
	char base[NAME_MAX + 1];
	__be32 node_ip;
	int ifd;
};

static int file_fd(struct agent_source *s)
{
	return ((struct file_source *)s)->ifd;
}

/* Did any queued inotify event name our file? */
static bool drain_inotify(struct file_source *fs)
{
	char buf[4096]
		__attribute__((aligned(__alignof__(struct inotify_event))));
	bool ours = false;
	ssize_t len;

	while ((len = read(fs->ifd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + len;) {
			const struct inotify_event *ie = (const void *)p;

			if (ie->len && !strcmp(ie->name, fs->base))
				ours = true;
			if (ie->mask & IN_Q_OVERFLOW)
				ours = true;
			p += sizeof(*ie) + ie->len;
		}
	}
	return ours;
}

static int file_fetch(struct agent_source *s, bool force,
		      struct xvpc_state **out)
{
	struct file_source *fs = (struct file_source *)s;
	char err[XVPC_STATE_ERR_LEN];
	int ret;

	if (fs->ifd >= 0 && !drain_inotify(fs) && !force)
		return 0;
	if (!force && access(fs->path, F_OK))
		return 0; /* removed: keep the current state */
	ret = xvpc_state_parse_file(fs->path, fs->node_ip, out, err,
				    sizeof(err));
	if (ret) {
		pr_err("desired state rejected, nothing of it applied: %s",
		       err);
		return ret;
	}
	pr_info("read desired state %s: revision %llu, %zu VPCs, %zu subnets, "
		"%zu endpoints",
		fs->path, (unsigned long long)(*out)->revision, (*out)->n_vpcs,
		(*out)->n_subnets, (*out)->n_eps);
	return 1;
}

static void file_destroy(struct agent_source *s)
{
	struct file_source *fs = (struct file_source *)s;

	if (fs->ifd >= 0)
		close(fs->ifd);
	free(fs);
}

static const struct agent_source_ops file_ops = {
	.name = "file",
	.fd = file_fd,
	.fetch = file_fetch,
	.destroy = file_destroy,
};

int agent_source_file_new(const char *path, __be32 node_ip,
			  struct agent_source **out)
{
	struct file_source *fs = calloc(1, sizeof(*fs));
	char tmp[PATH_MAX];

	if (!fs)
		return -ENOMEM;
	if (strlen(path) >= sizeof(fs->path)) {
		free(fs);
		return -ENAMETOOLONG;
	}
	fs->s.ops = &file_ops;
	fs->node_ip = node_ip;
	strcpy(fs->path, path);
	strcpy(tmp, path);
	snprintf(fs->dir, sizeof(fs->dir), "%s", dirname(tmp));
	strcpy(tmp, path);
	snprintf(fs->base, sizeof(fs->base), "%s", basename(tmp));
	fs->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (fs->ifd < 0 ||
	    inotify_add_watch(fs->ifd, fs->dir, IN_CLOSE_WRITE | IN_MOVED_TO) <
		    0) {
		pr_warn("cannot watch %s for changes (%s): only SIGHUP reloads "
			"%s",
			fs->dir, strerror(errno), fs->path);
		if (fs->ifd >= 0)
			close(fs->ifd);
		fs->ifd = -1;
	}
	*out = &fs->s;
	return 0;
}

void agent_source_destroy(struct agent_source *s)
{
	if (s)
		s->ops->destroy(s);
}
