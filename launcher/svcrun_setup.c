// SPDX-License-Identifier: MIT
// The container's init, pid 1 of its pid namespace.  It prepares the
// container in one flat, ordered list of steps, starts the command (its only
// child) with a vfork-style clone, tells the shim, then forwards signals and
// reaps until the command exits.  Every failure reaches the shim as a
// message naming its step; nothing here prints.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/capability.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "svcrun.h"

#define DEFAULT_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define MAX_GROUPS   64

/* No device cgroup limits what the container opens, and CAP_MKNOD is in the
 * default set: so its root (with the image's own nodes) and /dev are nodev,
 * and these nodes in /dev are the host's, bound there. */
static const char *const dev_nodes[] = {"null", "zero", "full", "random", "urandom", "tty"};
#define N_DEV_NODES (sizeof(dev_nodes) / sizeof(dev_nodes[0]))

struct init {
	const struct sr_opts *o;
	const struct sr_init_fds *fds;
	char root[PATH_MAX];	    /* the new root, until pivot_root */
	int dev_trees[N_DEV_NODES]; /* a detached copy of each host node */
	int *trees;		    /* per --bind: a detached copy of its source */
	bool *tree_dir;		    /* per --bind: the source is a directory */
	uid_t uid;
	gid_t gid;
	gid_t groups[MAX_GROUPS];
	size_t n_groups;
	char home[PATH_MAX];
	char **argv, **envp; /* copies: the init renames its own argv before the command */
	size_t n_env;
};

void sr_fwd_sigset(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGHUP);
	sigaddset(set, SIGQUIT);
	sigaddset(set, SIGUSR1);
	sigaddset(set, SIGUSR2);
}

/* ---- file descriptors and the network namespace ------------------------------ */

/* Own session (a terminal's ^C reaches the shim, which forwards it once);
 * stdio as the command will have it, and only the socket to the shim (and
 * --netns) besides. */
static int step_stdio(struct init *in, struct sr_err *e)
{
	const struct sr_init_fds *f = in->fds;

	setsid();
	/* the container dies with its shim (set again after the user switch,
	 * which clears it) */
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	umask(0); /* device nodes and mount points get exactly their modes */
	signal(SIGPIPE, SIG_DFL);
	if (dup2(f->devnull, 0) < 0 ||
	    (f->out >= 0 && (dup2(f->out, 1) < 0 || dup2(f->out, 2) < 0)))
		return sr_fail(e, "stdio", errno, NULL);
	/* the shim's descriptors and what svcd passed (the sync fd): the
	 * container holds none of them */
	sr_close_except(f->sock, f->netns);
	return 0;
}

static int lo_up(struct sr_err *e)
{
	struct ifreq ifr = {.ifr_name = "lo"};
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), rc = 0;

	if (fd < 0)
		return sr_fail(e, "netns", errno, "socket");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		rc = sr_fail(e, "netns", errno, "lo");
	ifr.ifr_flags |= IFF_UP;
	if (!rc && ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
		rc = sr_fail(e, "netns", errno, "lo up");
	close(fd);
	return rc;
}

/* A new network namespace is made here rather than by clone3: it costs
 * about as much as the overlay, which the shim mounts meanwhile. */
static int step_netns(struct init *in, struct sr_err *e)
{
	const struct sr_init_fds *f = in->fds;

	if (f->netns >= 0) {
		if (setns(f->netns, CLONE_NEWNET) < 0)
			return sr_fail(e, "netns", errno, "%s", in->o->netns);
		close(f->netns);
		return 0;
	}
	if (!f->new_net)
		return 0;
	if (unshare(CLONE_NEWNET) < 0)
		return sr_fail(e, "netns", errno, "new network namespace");
	return lo_up(e);
}

/* ---- the root filesystem ------------------------------------------------------ */

/* Nothing we mount may propagate back to the host. */
static int step_private(struct init *in, struct sr_err *e)
{
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return sr_fail(e, "mount", errno, "making / private");
	return 0;
}

static int mkdir_ok(const char *path, mode_t mode)
{
	return mkdir(path, mode) < 0 && errno != EEXIST ? -1 : 0;
}

/* rm -r DIR/NAME (DIR a directory fd or AT_FDCWD); 0 or -errno. */
static int rm_tree(int dir, const char *name, int depth)
{
	struct dirent *de;
	DIR *d;
	int fd, rc = 0;

	if (unlinkat(dir, name, 0) == 0 || errno == ENOENT)
		return 0;
	if (errno != EISDIR || depth > 32)
		return -errno;
	fd = openat(dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	d = fd < 0 ? NULL : fdopendir(fd);
	if (!d) {
		rc = -errno;
		if (fd >= 0)
			close(fd);
		return rc;
	}
	while (!rc && (de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			rc = rm_tree(dirfd(d), de->d_name, depth + 1);
	closedir(d);
	if (!rc && unlinkat(dir, name, AT_REMOVEDIR) < 0)
		rc = -errno;
	return rc;
}

/* A fresh, empty workdir for each mount.  Overlay would otherwise empty the
 * old one itself, while mounting, and on a filesystem mounted with -o
 * discard every directory block it frees waits for a discard.  The old one
 * becomes DIR/work.old, which the shim removes off the critical path
 * (sr_overlay_tidy).  A work.old a crash left is removed first. */
static int fresh_workdir(const char *work, const char *old)
{
	if (rename(work, old) < 0 && errno != ENOENT) {
		if ((errno != EEXIST && errno != ENOTEMPTY) || rm_tree(AT_FDCWD, old, 0) < 0)
			return -1;
		if (rename(work, old) < 0 && errno != ENOENT)
			return -1;
	}
	return mkdir(work, 0700);
}

/* The writable layer's overlay, made by the shim while the init sets up
 * its namespaces, as a detached mount (fsmount) that the init attaches.
 * "volatile": no sync of the whole host filesystem when the container's
 * mount namespace goes (it costs a full disk sync per exit); the layer is
 * the container's scratch space, not durable storage. */
int sr_overlay_make(const struct sr_opts *o, struct sr_err *e)
{
	char upper[PATH_MAX], work[PATH_MAX], old[PATH_MAX], merged[PATH_MAX];
	const char *s = o->scratch;
	int fs, mnt = -1, err;

	snprintf(upper, sizeof(upper), "%s/upper", s);
	snprintf(work, sizeof(work), "%s/work", s);
	snprintf(old, sizeof(old), "%s/work.old", s);
	snprintf(merged, sizeof(merged), "%s/merged", s);
	if (mkdir_ok(s, 0700) || mkdir_ok(upper, 0755) || mkdir_ok(merged, 0755) ||
	    fresh_workdir(work, old))
		return sr_fail(e, "overlay", errno, "making %s/{upper,work,merged}", s);
	fs = fsopen("overlay", FSOPEN_CLOEXEC);
	if (fs >= 0 && fsconfig(fs, FSCONFIG_SET_STRING, "source", "overlay", 0) == 0 &&
	    fsconfig(fs, FSCONFIG_SET_STRING, "lowerdir", o->rootfs, 0) == 0 &&
	    fsconfig(fs, FSCONFIG_SET_STRING, "upperdir", upper, 0) == 0 &&
	    fsconfig(fs, FSCONFIG_SET_STRING, "workdir", work, 0) == 0 &&
	    fsconfig(fs, FSCONFIG_SET_FLAG, "volatile", NULL, 0) == 0 &&
	    fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) == 0)
		mnt = fsmount(fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NODEV);
	err = errno;
	if (fs >= 0)
		close(fs);
	if (mnt >= 0)
		return mnt;
	/* put the old workdir back: it may be a running overlay's (the
	 * scratch dir given twice), which then made this mount fail */
	if (rmdir(work) == 0)
		rename(old, work);
	return sr_fail(e, "overlay", err, "lowerdir=%s,upperdir=%s,workdir=%s", o->rootfs, upper,
		       work);
}

void sr_overlay_tidy(const struct sr_opts *o)
{
	char old[PATH_MAX];

	snprintf(old, sizeof(old), "%s/work.old", o->scratch);
	rm_tree(AT_FDCWD, old, 0);
}

int sr_send_fd(int sock, int fd)
{
	char c = 'f';
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u = {0};
	struct iovec iov = {.iov_base = &c, .iov_len = 1};
	struct msghdr m = {.msg_iov = &iov,
			   .msg_iovlen = 1,
			   .msg_control = u.buf,
			   .msg_controllen = sizeof(u.buf)};
	struct cmsghdr *h = CMSG_FIRSTHDR(&m);

	h->cmsg_level = SOL_SOCKET;
	h->cmsg_type = SCM_RIGHTS;
	h->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(h), &fd, sizeof(int));
	return sendmsg(sock, &m, MSG_NOSIGNAL) == 1 ? 0 : -errno;
}

static int recv_fd(int sock)
{
	char c;
	int fd = -1;
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct iovec iov = {.iov_base = &c, .iov_len = 1};
	struct msghdr m = {.msg_iov = &iov,
			   .msg_iovlen = 1,
			   .msg_control = u.buf,
			   .msg_controllen = sizeof(u.buf)};
	struct cmsghdr *h;
	ssize_t n;

	do
		n = recvmsg(sock, &m, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	h = n == 1 ? CMSG_FIRSTHDR(&m) : NULL;
	if (h && h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS)
		memcpy(&fd, CMSG_DATA(h), sizeof(int));
	if (fd < 0)
		errno = n < 0 ? errno : EPIPE;
	return fd;
}

/* The overlay from the shim attached on DIR/merged, or the image bound onto
 * itself: pivot_root wants a mount point. */
static int step_rootfs(struct init *in, struct sr_err *e)
{
	const struct sr_opts *o = in->o;
	int fd;

	if (!o->scratch) {
		struct mount_attr nodev = {.attr_set = MOUNT_ATTR_NODEV};

		snprintf(in->root, sizeof(in->root), "%s", o->rootfs);
		if (mount(o->rootfs, o->rootfs, NULL, MS_BIND | MS_REC, NULL) < 0 ||
		    mount_setattr(AT_FDCWD, o->rootfs, AT_RECURSIVE, &nodev, sizeof(nodev)) < 0)
			return sr_fail(e, "mount", errno, "%s", o->rootfs);
		return 0;
	}
	snprintf(in->root, sizeof(in->root), "%s/merged", o->scratch);
	fd = recv_fd(in->fds->sock);
	if (fd < 0)
		return sr_fail(e, "overlay", errno, "from the shim");
	if (move_mount(fd, "", AT_FDCWD, in->root, MOVE_MOUNT_F_EMPTY_PATH) < 0) {
		int err = errno;

		close(fd);
		return sr_fail(e, "overlay", err, "attaching on %s", in->root);
	}
	close(fd);
	return 0;
}

/* Bind sources are host paths: take detached copies of them now, to attach
 * inside the container after pivot_root, where a symlink in the image can
 * no longer lead a mount point out of it. */
static int step_bind_open(struct init *in, struct sr_err *e)
{
	size_t n = in->o->n_binds;

	if (!n)
		return 0;
	in->trees = calloc(n, sizeof(*in->trees));
	in->tree_dir = calloc(n, sizeof(*in->tree_dir));
	if (!in->trees || !in->tree_dir)
		return sr_fail(e, "bind", ENOMEM, NULL);
	for (size_t i = 0; i < n; i++) {
		const struct sr_bind *b = &in->o->binds[i];
		struct mount_attr ro = {.attr_set = MOUNT_ATTR_RDONLY};
		struct stat st;
		int fd =
		    open_tree(AT_FDCWD, b->src, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);

		if (fd < 0)
			return sr_fail(e, "bind", errno, "%s", b->src);
		in->trees[i] = fd;
		if (fstat(fd, &st) < 0)
			return sr_fail(e, "bind", errno, "%s", b->src);
		in->tree_dir[i] = S_ISDIR(st.st_mode);
		if (b->ro &&
		    mount_setattr(fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &ro, sizeof(ro)) < 0)
			return sr_fail(e, "bind", errno, "%s: read-only", b->src);
	}
	return 0;
}

/* pivot_root(".", "."): the old root ends up stacked on the new one, and is
 * detached at once; no directory for it is needed in the image. */
static int step_pivot(struct init *in, struct sr_err *e)
{
	if (chdir(in->root) < 0)
		return sr_fail(e, "pivot_root", errno, "%s", in->root);
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		return sr_fail(e, "pivot_root", errno, NULL);
	if (umount2(".", MNT_DETACH) < 0)
		return sr_fail(e, "pivot_root", errno, "detaching the old root");
	if (chdir("/") < 0)
		return sr_fail(e, "pivot_root", errno, "chdir /");
	return 0;
}

/* mount(2), making the mount point when the image lacks it. */
static int mount_at(const char *src, const char *dst, const char *type, unsigned long flags,
		    const char *data)
{
	if (mount(src, dst, type, flags, data) == 0)
		return 0;
	if (errno != ENOENT || mkdir(dst, 0755) < 0)
		return -1;
	return mount(src, dst, type, flags, data);
}

/* ---- /proc, /dev, /sys ------------------------------------------------------- */

static int step_proc(struct init *in, struct sr_err *e)
{
	if (mount_at("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		return sr_fail(e, "proc", errno, "/proc");
	return 0;
}

static const struct {
	const char *name, *target;
} dev_links[] = {
    {"fd", "/proc/self/fd"},	   {"stdin", "/proc/self/fd/0"}, {"stdout", "/proc/self/fd/1"},
    {"stderr", "/proc/self/fd/2"}, {"ptmx", "pts/ptmx"},
};

/* Before pivot_root: detached copies of the host's nodes. */
static int step_dev_open(struct init *in, struct sr_err *e)
{
	char path[32];

	for (size_t i = 0; i < N_DEV_NODES; i++) {
		snprintf(path, sizeof(path), "/dev/%s", dev_nodes[i]);
		in->dev_trees[i] = open_tree(AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
		if (in->dev_trees[i] < 0)
			return sr_fail(e, "dev", errno, "%s", path);
	}
	return 0;
}

static int dev_populate(struct init *in, int dir, struct sr_err *e)
{
	for (size_t i = 0; i < N_DEV_NODES; i++) {
		if (mknodat(dir, dev_nodes[i], S_IFREG | 0666, 0) < 0 ||
		    move_mount(in->dev_trees[i], "", dir, dev_nodes[i], MOVE_MOUNT_F_EMPTY_PATH) <
			0)
			return sr_fail(e, "dev", errno, "/dev/%s", dev_nodes[i]);
		close(in->dev_trees[i]);
	}
	for (size_t i = 0; i < sizeof(dev_links) / sizeof(dev_links[0]); i++)
		if (symlinkat(dev_links[i].target, dir, dev_links[i].name) < 0)
			return sr_fail(e, "dev", errno, "/dev/%s", dev_links[i].name);
	if (mkdirat(dir, "pts", 0755) < 0 || mkdirat(dir, "shm", 01777) < 0)
		return sr_fail(e, "dev", errno, "mkdir");
	return 0;
}

/* A small tmpfs with the usual nodes, its own devpts instance and /dev/shm. */
static int step_dev(struct init *in, struct sr_err *e)
{
	int dir, rc;

	if (mount_at("tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_NODEV | MS_STRICTATIME,
		     "mode=755,size=65536k") < 0)
		return sr_fail(e, "dev", errno, "/dev");
	dir = open("/dev", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0)
		return sr_fail(e, "dev", errno, "/dev");
	rc = dev_populate(in, dir, e);
	close(dir);
	if (rc)
		return rc;
	if (mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
		  "newinstance,ptmxmode=0666,mode=0620,gid=5") < 0)
		return sr_fail(e, "dev", errno, "/dev/pts");
	if (mount("shm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		  "mode=1777,size=65536k") < 0)
		return sr_fail(e, "dev", errno, "/dev/shm");
	return 0;
}

static int step_sys(struct init *in, struct sr_err *e)
{
	if (mount_at("sysfs", "/sys", "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) <
	    0)
		return sr_fail(e, "sys", errno, "/sys");
	return 0;
}

/* What Docker hides or freezes: root in the container is root on the host,
 * so e.g. /proc/sys/kernel/core_pattern must not be writable. */
static const char *const ro_paths[] = {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
				       "/proc/sysrq-trigger"};
static const char *const masked_files[] = {"/proc/kcore",	  "/proc/keys",
					   "/proc/latency_stats", "/proc/timer_list",
					   "/proc/timer_stats",	  "/proc/sched_debug"};
static const char *const masked_dirs[] = {"/proc/acpi", "/proc/asound", "/proc/scsi",
					  "/sys/firmware"};

static int step_mask(struct init *in, struct sr_err *e)
{
	const unsigned long ro =
	    MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC;

	for (size_t i = 0; i < sizeof(ro_paths) / sizeof(ro_paths[0]); i++) {
		const char *p = ro_paths[i];

		if (mount(p, p, NULL, MS_BIND | MS_REC, NULL) < 0) {
			if (errno == ENOENT)
				continue;
			return sr_fail(e, "proc", errno, "%s", p);
		}
		if (mount(NULL, p, NULL, ro, NULL) < 0)
			return sr_fail(e, "proc", errno, "%s: read-only", p);
	}
	for (size_t i = 0; i < sizeof(masked_files) / sizeof(masked_files[0]); i++)
		if (mount("/dev/null", masked_files[i], NULL, MS_BIND, NULL) < 0 && errno != ENOENT)
			return sr_fail(e, "proc", errno, "masking %s", masked_files[i]);
	for (size_t i = 0; i < sizeof(masked_dirs) / sizeof(masked_dirs[0]); i++)
		if (mount("tmpfs", masked_dirs[i], "tmpfs", MS_RDONLY, NULL) < 0 && errno != ENOENT)
			return sr_fail(e, "proc", errno, "masking %s", masked_dirs[i]);
	return 0;
}

/* ---- --bind --------------------------------------------------------------------- */

/* mkdir -p for the parents of PATH (absolute, inside the container). */
static int make_parents(const char *path)
{
	char buf[PATH_MAX];
	char *p;

	snprintf(buf, sizeof(buf), "%s", path);
	for (p = strchr(buf + 1, '/'); p; p = strchr(p + 1, '/')) {
		*p = 0;
		if (mkdir_ok(buf, 0755) < 0)
			return -1;
		*p = '/';
	}
	return 0;
}

static int make_target(const char *dst, bool dir)
{
	int fd;

	if (make_parents(dst) < 0)
		return -1;
	if (dir)
		return mkdir_ok(dst, 0755);
	fd = open(dst, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

static int step_bind_attach(struct init *in, struct sr_err *e)
{
	for (size_t i = 0; i < in->o->n_binds; i++) {
		const char *dst = in->o->binds[i].dst;
		int fd = in->trees[i];

		if (move_mount(fd, "", AT_FDCWD, dst, MOVE_MOUNT_F_EMPTY_PATH) < 0 &&
		    (errno != ENOENT || make_target(dst, in->tree_dir[i]) < 0 ||
		     move_mount(fd, "", AT_FDCWD, dst, MOVE_MOUNT_F_EMPTY_PATH) < 0))
			return sr_fail(e, "bind", errno, "%s", dst);
		close(fd);
		in->trees[i] = -1;
	}
	return 0;
}

static int step_hostname(struct init *in, struct sr_err *e)
{
	const char *h = in->o->hostname;

	if (h && sethostname(h, strlen(h)) < 0)
		return sr_fail(e, "hostname", errno, "%s", h);
	return 0;
}

/* ---- the user, from the container's /etc/passwd and /etc/group ----------------- */

/* The whole of a small file, NUL-terminated; NULL with errno. */
static char *slurp(const char *path)
{
	struct stat st;
	char *buf = NULL;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) == 0 && st.st_size < (16 << 20))
		buf = malloc((size_t)st.st_size + 1);
	n = buf ? read(fd, buf, (size_t)st.st_size) : -1;
	if (n < 0) {
		int err = buf ? errno : EFBIG;

		free(buf);
		close(fd);
		errno = err;
		return NULL;
	}
	buf[n] = 0;
	close(fd);
	return buf;
}

/* A user or group id: all digits, below (uid_t)-1. */
static int parse_id(const char *s, unsigned int *out)
{
	char *end;
	unsigned long v;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v >= 0xffffffffUL)
		return -1;
	*out = (unsigned int)v;
	return 0;
}

/* Split LINE at ':' into at most MAX fields; returns how many. */
static int split(char *line, char **f, int max)
{
	int n = 0;

	for (char *p = line; p && n < max; n++) {
		f[n] = p;
		p = strchr(p, ':');
		if (p)
			*p++ = 0;
	}
	return n;
}

/* Next line of BUF (NUL-terminated in place); NULL at the end. */
static char *next_line(char **cursor)
{
	char *line = *cursor, *nl;

	if (!line || !*line)
		return NULL;
	nl = strchr(line, '\n');
	*cursor = nl ? nl + 1 : NULL;
	if (nl)
		*nl = 0;
	return line;
}

/* Find KEY (a name, or an id when BY_ID) in /etc/passwd or /etc/group
 * content: f[] gets the fields of its line.  1 found, 0 not. */
static int find_entry(char *buf, const char *key, bool by_id, unsigned int id, char **f, int nf)
{
	char *cur = buf, *line;

	while ((line = next_line(&cur))) {
		unsigned int v;

		if (line[0] == '#' || split(line, f, nf) < nf)
			continue;
		if (by_id ? parse_id(f[2], &v) == 0 && v == id : !strcmp(f[0], key))
			return 1;
	}
	return 0;
}

static void add_group(struct init *in, gid_t g)
{
	for (size_t i = 0; i < in->n_groups; i++)
		if (in->groups[i] == g)
			return;
	if (in->n_groups < MAX_GROUPS)
		in->groups[in->n_groups++] = g;
}

/* The GROUP of USER:GROUP, and the supplementary groups of user NAME (the
 * groups of /etc/group that list it), in one pass. */
static int resolve_groups(struct init *in, const char *group, const char *name, struct sr_err *e)
{
	char *buf, *cur, *line, *f[4];
	unsigned int g;
	bool found = false;

	if (group && parse_id(group, &g) == 0) {
		in->gid = g;
		group = NULL;
	}
	if (!group && !name)
		return 0;
	buf = slurp("/etc/group");
	if (!buf && errno != ENOENT)
		return sr_fail(e, "user", errno, "/etc/group");
	for (cur = buf; (line = next_line(&cur));) {
		if (line[0] == '#' || split(line, f, 4) < 4 || parse_id(f[2], &g) < 0)
			continue;
		if (group && !found && !strcmp(f[0], group)) {
			in->gid = g;
			found = true;
		}
		for (char *save, *m = strtok_r(f[3], ",", &save); name && m;
		     m = strtok_r(NULL, ",", &save))
			if (!strcmp(m, name))
				add_group(in, g);
	}
	free(buf);
	if (group && !found)
		return sr_fail(e, "user", 0, "group \"%s\" not found in /etc/group", group);
	return 0;
}

/* USER[:GROUP], by name or number (no --user: root).  A number missing from
 * /etc/passwd is fine (gid 0, HOME /), as with Docker; a name is not. */
static int step_user(struct init *in, struct sr_err *e)
{
	char spec[256], *group, *f[7], *passwd, name[256] = "";
	unsigned int id = 0;
	bool by_id;
	int found;

	snprintf(spec, sizeof(spec), "%s", in->o->user ? in->o->user : "0");
	group = strchr(spec, ':');
	if (group)
		*group++ = 0;
	by_id = parse_id(spec, &id) == 0;
	passwd = slurp("/etc/passwd");
	if (!passwd && errno != ENOENT)
		return sr_fail(e, "user", errno, "/etc/passwd");
	found = passwd && find_entry(passwd, spec, by_id, id, f, 7);
	if (!found && !by_id) {
		free(passwd);
		return sr_fail(e, "user", 0, "\"%s\" not found in /etc/passwd", spec);
	}
	in->uid = id;
	in->gid = 0;
	snprintf(in->home, sizeof(in->home), "/");
	if (found) {
		parse_id(f[2], &in->uid);
		parse_id(f[3], &in->gid);
		snprintf(name, sizeof(name), "%s", f[0]);
		if (f[5][0])
			snprintf(in->home, sizeof(in->home), "%s", f[5]);
	}
	free(passwd);
	return resolve_groups(in, group, name[0] ? name : NULL, e);
}

/* ---- cwd, capabilities, credentials ----------------------------------------------- */

/* Made if missing, as Docker does (by root, before the user switch). */
static int step_cwd_make(struct init *in, struct sr_err *e)
{
	const char *cwd = in->o->cwd;

	if (cwd && (make_parents(cwd) < 0 || mkdir_ok(cwd, 0755) < 0))
		return sr_fail(e, "cwd", errno, "%s", cwd);
	return 0;
}

static int step_bounding(struct init *in, struct sr_err *e)
{
	for (int c = 0; c < 64; c++) {
		if (in->o->caps & (1ULL << c))
			continue;
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0) {
			if (errno == EINVAL) /* past the kernel's last capability */
				break;
			return sr_fail(e, "caps", errno, "dropping %d from the bounding set", c);
		}
	}
	return 0;
}

/* KEEPCAPS: the permitted set survives the switch away from uid 0, so that
 * capset below can still grant what --caps keeps. */
static int step_setuser(struct init *in, struct sr_err *e)
{
	if (setgroups(in->n_groups, in->groups) < 0)
		return sr_fail(e, "user", errno, "setgroups");
	if (setresgid(in->gid, in->gid, in->gid) < 0)
		return sr_fail(e, "user", errno, "setgid %u", (unsigned int)in->gid);
	if (in->uid && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		return sr_fail(e, "user", errno, "keepcaps");
	if (setresuid(in->uid, in->uid, in->uid) < 0)
		return sr_fail(e, "user", errno, "setuid %u", (unsigned int)in->uid);
	return 0;
}

/* Effective = permitted = the kept set; inheritable empty (as Docker since
 * CVE-2022-24769); ambient cleared.  After exec, root keeps the set and any
 * other user has none, as under Docker. */
static int step_capset(struct init *in, struct sr_err *e)
{
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct d[2] = {{0}}, cur[2];
	uint64_t c = in->o->caps;
	long rc;

	d[0].effective = d[0].permitted = (uint32_t)c;
	d[1].effective = d[1].permitted = (uint32_t)(c >> 32);
	rc = syscall(SYS_capset, &h, d);
	/* names this kernel does not know (--caps ALL on an older one): keep
	 * what it has */
	if (rc < 0 && errno == EPERM && syscall(SYS_capget, &h, cur) == 0) {
		d[0].effective = d[0].permitted &= cur[0].permitted;
		d[1].effective = d[1].permitted &= cur[1].permitted;
		rc = syscall(SYS_capset, &h, d);
	}
	if (rc < 0)
		return sr_fail(e, "caps", errno, "capset");
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		return sr_fail(e, "caps", errno, "clearing the ambient set");
	return 0;
}

static int step_chdir(struct init *in, struct sr_err *e)
{
	const char *cwd = in->o->cwd;

	if (cwd && chdir(cwd) < 0)
		return sr_fail(e, "cwd", errno, "%s", cwd);
	return 0;
}

static int step_nnp(struct init *in, struct sr_err *e)
{
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return sr_fail(e, "no_new_privs", errno, NULL);
	return 0;
}

/* The container dies with its shim: again, the user switch cleared it. */
static int step_parent_death(struct init *in, struct sr_err *e)
{
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		return sr_fail(e, "init", errno, "pdeathsig");
	return 0;
}

/* ---- environment and argv -------------------------------------------------------------- */

/* Set K=V (KV), replacing an earlier K. */
static int env_put(struct init *in, const char *kv)
{
	size_t klen = strcspn(kv, "=") + 1;
	char *dup = strdup(kv);

	if (!dup)
		return -1;
	for (size_t i = 0; i < in->n_env; i++) {
		if (!strncmp(in->envp[i], kv, klen)) {
			free(in->envp[i]);
			in->envp[i] = dup;
			return 0;
		}
	}
	in->envp[in->n_env++] = dup;
	return 0;
}

static bool env_has(struct init *in, const char *key)
{
	size_t klen = strlen(key);

	for (size_t i = 0; i < in->n_env; i++)
		if (!strncmp(in->envp[i], key, klen) && in->envp[i][klen] == '=')
			return true;
	return false;
}

/* PATH, HOSTNAME, then -e in order (later wins), then HOME unless given. */
static int build_env(struct init *in)
{
	const struct sr_opts *o = in->o;
	char buf[PATH_MAX + 16];
	struct utsname u;

	in->envp = calloc(o->n_env + 4, sizeof(*in->envp));
	if (!in->envp || env_put(in, DEFAULT_PATH) < 0)
		return -1;
	if (uname(&u) < 0)
		return -1;
	snprintf(buf, sizeof(buf), "HOSTNAME=%s", o->hostname ? o->hostname : u.nodename);
	if (env_put(in, buf) < 0)
		return -1;
	for (size_t i = 0; i < o->n_env; i++)
		if (env_put(in, o->env[i]) < 0)
			return -1;
	snprintf(buf, sizeof(buf), "HOME=%s", in->home);
	return env_has(in, "HOME") ? 0 : env_put(in, buf);
}

/* The environment and the command, copied: step_title reuses the memory
 * of svcrun's command line. */
static int step_env(struct init *in, struct sr_err *e)
{
	const struct sr_opts *o = in->o;
	size_t n = 0;

	if (build_env(in) < 0)
		return sr_fail(e, "env", ENOMEM, NULL);
	while (o->argv[n])
		n++;
	in->argv = calloc(n + 1, sizeof(*in->argv));
	for (size_t i = 0; in->argv && i < n; i++)
		if (!(in->argv[i] = strdup(o->argv[i])))
			return sr_fail(e, "env", ENOMEM, NULL);
	return in->argv ? 0 : sr_fail(e, "env", ENOMEM, NULL);
}

/* The init shows as "svcrun init" in the container's ps, without the host
 * paths of svcrun's command line.  The last byte of the argument area
 * made non-NUL tells the kernel to show the first string only (as
 * setproctitle does), without the NULs that now fill the rest.  Last step:
 * the options point into that memory. */
static int step_title(struct init *in, struct sr_err *e)
{
	const struct sr_opts *o = in->o;
	size_t len = (size_t)(o->self_end - o->self_start);
	static const char title[] = "svcrun init";

	if (len > sizeof(title)) {
		memset(o->self_start, 0, len);
		memcpy(o->self_start, title, sizeof(title));
		o->self_start[len - 1] = ' ';
	}
	return 0;
}

/* v1 cgroups: the shim moves us in while we prepared; wait for its word
 * before the command, so that every process of it is accounted for. */
static int step_wait_go(struct init *in, struct sr_err *e)
{
	char go;
	ssize_t n;

	if (!in->fds->wait_go)
		return 0;
	do
		n = recv(in->fds->sock, &go, 1, 0);
	while (n < 0 && errno == EINTR);
	if (n != 1)
		return sr_fail(e, "cgroup", n < 0 ? errno : 0, n < 0 ? NULL : "the shim gave up");
	return 0;
}

/* The set-up, in order.  Each step does nothing when it has nothing to do. */
static int (*const steps[])(struct init *in, struct sr_err *e) = {
    step_stdio,	   step_netns, step_private, step_rootfs,	step_bind_open, step_dev_open,
    step_pivot,	   step_proc,  step_dev,     step_sys,		step_mask,	step_bind_attach,
    step_hostname, step_user,  step_env,     step_cwd_make,	step_bounding,	step_setuser,
    step_capset,   step_chdir, step_nnp,     step_parent_death, step_wait_go,	step_title,
};

/* ---- the command ---------------------------------------------------------------- */

struct spawn {
	char **argv, **envp;
	const char *path; /* PATH to search, NULL when argv[0] holds a '/' */
	volatile int err; /* set by the child when every execve failed */
	char file[PATH_MAX];
};

static char spawn_stack[32 * 1024] __attribute__((aligned(16)));

static bool exec_skip(int err)
{
	return err == ENOENT || err == ENOTDIR || err == EACCES || err == ESTALE || err == ENODEV ||
	       err == ETIMEDOUT;
}

/* Runs on spawn_stack, in the init's memory, until execve: only raw
 * syscalls and writes to *sp.  Searches PATH as execvp does. */
__attribute__((no_sanitize_address)) static int spawn_child(void *arg)
{
	struct spawn *sp = arg;
	const char *name = sp->argv[0], *p = sp->path;
	size_t nlen = strlen(name);
	uint64_t none = 0;
	int err = ENOENT;

	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, sizeof(none));
	if (!p) {
		execve(name, sp->argv, sp->envp);
		sp->err = errno;
		_exit(SR_EXIT_NOTFOUND);
	}
	for (;;) {
		const char *end = strchrnul(p, ':');
		size_t dlen = end > p ? (size_t)(end - p) : 1;

		if (dlen + nlen + 2 <= sizeof(sp->file)) {
			memcpy(sp->file, end > p ? p : ".", dlen);
			sp->file[dlen] = '/';
			memcpy(sp->file + dlen + 1, name, nlen + 1);
			execve(sp->file, sp->argv, sp->envp);
			if (!exec_skip(errno)) {
				sp->err = errno;
				_exit(SR_EXIT_NOEXEC);
			}
			if (errno != ENOENT && errno != ENOTDIR)
				err = errno; /* found, but not executable: say why */
		}
		if (!*end)
			break;
		p = end + 1;
	}
	memcpy(sp->file, name, nlen + 1 < sizeof(sp->file) ? nlen + 1 : 1);
	sp->err = err;
	_exit(SR_EXIT_NOTFOUND);
}

static const char *env_get(char **envp, const char *key)
{
	size_t klen = strlen(key);

	for (; *envp; envp++)
		if (!strncmp(*envp, key, klen) && (*envp)[klen] == '=')
			return *envp + klen + 1;
	return NULL;
}

/* vfork semantics: clone returns once the child has exec'd or given up, so
 * success and failure are known without a pipe. */
static pid_t spawn(struct init *in, struct sr_err *e)
{
	struct spawn sp = {.argv = in->argv, .envp = in->envp};
	pid_t pid;

	umask(022);
	if (in->fds->cpus) /* the shim sent the init away from its CPU */
		sched_setaffinity(0, sizeof(*in->fds->cpus), in->fds->cpus);
	if (!strchr(in->argv[0], '/'))
		sp.path = env_get(in->envp, "PATH") ?: "";
	else
		snprintf(sp.file, sizeof(sp.file), "%s", in->argv[0]);
	pid = clone(spawn_child, spawn_stack + sizeof(spawn_stack),
		    CLONE_VM | CLONE_VFORK | SIGCHLD, &sp);
	if (pid < 0)
		return sr_fail(e, "exec", errno, "%s", in->argv[0]);
	if (!sp.err)
		return pid;
	waitpid(pid, NULL, 0);
	sr_fail(e, "exec", sp.err, "%s", sp.file);
	e->code = sp.err == ENOENT || sp.err == ENOTDIR ? SR_EXIT_NOTFOUND : SR_EXIT_NOEXEC;
	return -1;
}

static void send_msg(int sock, int type, int status, const struct sr_err *e)
{
	struct sr_msg m = {.type = type, .status = status};

	if (e)
		m.err = *e;
	while (send(sock, &m, sizeof(m), MSG_NOSIGNAL) < 0 && errno == EINTR)
		;
}

/* Forward the shim's signals to the command, reap every orphan, and leave
 * with the command: the kernel then kills what is left in the container. */
static _Noreturn void init_loop(int sock, pid_t cmd)
{
	sigset_t set;

	sr_fwd_sigset(&set);
	sigaddset(&set, SIGCHLD);
	for (;;) {
		int sig = sigwaitinfo(&set, NULL), st;
		pid_t p;

		if (sig != SIGCHLD) {
			if (sig > 0)
				kill(cmd, sig);
			continue;
		}
		while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
			if (p != cmd)
				continue;
			send_msg(sock, SR_MSG_EXIT, st, NULL);
			_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
		}
	}
}

_Noreturn void sr_init_main(const struct sr_opts *o, const struct sr_init_fds *fds)
{
	struct init in = {.o = o, .fds = fds};
	struct sr_err e = {0};
	sigset_t set;
	pid_t cmd;

	/* SIGCHLD stays pending (not discarded) until init_loop waits for it */
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		if (steps[i](&in, &e) < 0) {
			send_msg(fds->sock, SR_MSG_ERROR, 0, &e);
			_exit(e.code);
		}
	}
	cmd = spawn(&in, &e);
	if (cmd < 0) {
		send_msg(fds->sock, SR_MSG_ERROR, 0, &e);
		_exit(e.code);
	}
	send_msg(fds->sock, SR_MSG_OK, 0, NULL);
	init_loop(fds->sock, cmd);
}
