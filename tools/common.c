// SPDX-License-Identifier: Apache-2.0
/*
 * Shared parts of the vdk vhost-user backend programs: options, logging,
 * signals, accepting the front-end and the serving loop (see common.h).
 */
#include "common.h"
#include "log.h"
#include "options.h"
#include "socket_perm.h"
#include "stats.h"

#include <errno.h>
#include <json-c/json.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include <vdk/device.h>
#include <vdk/log.h>

const char vdk_tool_common_help[] =
	"  --socket-path=PATH     listen on the Unix socket PATH for the "
	"front-end\n"
	"  --fd=FDNUM             use the inherited socket FDNUM instead "
	"(listening\n"
	"                         or connected)\n"
	"  --socket-group=GROUP   give the --socket-path socket to GROUP, mode "
	"0660,\n"
	"                         so that its members may connect (default: "
	"the umask\n"
	"                         decides)\n"
	"  --print-capabilities   print the backend capabilities as JSON and "
	"exit\n"
	"  --once                 exit when the first front-end disconnects "
	"(default:\n"
	"                         serve front-ends one after the other, "
	"reconnects and\n"
	"                         VM restarts, until SIGINT/SIGTERM/SIGHUP; "
	"the same\n"
	"                         as --keep-listening)\n"
	"  --allow-unsealed-memory  map guest RAM files not sealed with\n"
	"                         F_SEAL_SHRINK (memory-backend-file); a "
	"front-end\n"
	"                         that truncates one can then kill this "
	"program\n"
	"  --stats-socket=PATH    answer each connection on the Unix socket "
	"PATH with\n"
	"                         the statistics as one JSON document (SIGUSR1 "
	"logs them)\n"
	"  --log=stderr|syslog    where messages go (default stderr, with "
	"timestamps;\n"
	"                         syslog also reaches journald)\n"
	"  -v, --verbose          more messages: info, debug, the vhost-user "
	"message\n"
	"                         trace\n"
	"  -V, --version          print the version and exit\n"
	"  -h, --help             this text\n";

void vdk_tool_msg(const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	vdk_tool_log_write(VDK_TOOL_LOG_NOTICE, NULL, buf);
}

int vdk_tool_parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
	char *end;
	unsigned long v;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

int vdk_tool_parse_opt(const char *name, const char *arg, uint32_t min,
		       uint32_t max, bool pow2, uint32_t *out)
{
	if (vdk_tool_parse_u32(arg, min, max, out) < 0 ||
	    (pow2 && (*out & (*out - 1)))) {
		vdk_tool_msg("--%s: want %s%u..%u", name,
			     pow2 ? "a power of two " : "", min, max);
		return -EINVAL;
	}
	return 0;
}

int vdk_tool_parse_common(struct vdk_tool_opts *o, int opt, const char *arg)
{
	uint32_t fd;

	switch (opt) {
	case VDK_TOOL_OPT_SOCKET_PATH:
		o->socket_path = arg;
		return 1;
	case VDK_TOOL_OPT_FD:
		if (vdk_tool_parse_u32(arg, 0, INT_MAX, &fd) == 0) {
			o->fd = (int)fd;
			return 1;
		}
		vdk_tool_msg("--fd: not a file descriptor: '%s'", arg);
		return -EINVAL;
	case VDK_TOOL_OPT_LOG:
		if (vdk_tool_log_parse(arg, &o->log_target) == 0)
			return 1;
		vdk_tool_msg("--log: want stderr or syslog (see --help)");
		return -EINVAL;
	case VDK_TOOL_OPT_STATS_SOCKET:
		o->stats_socket = arg;
		return 1;
	case VDK_TOOL_OPT_SOCKET_GROUP:
		o->socket_group = arg;
		return 1;
	case 'v':
		o->verbosity++;
		return 1;
	default:
		return 0;
	}
}

int vdk_tool_check_common(const struct vdk_tool_opts *o)
{
	if (o->socket_path && o->fd >= 0) {
		vdk_tool_msg("give one of --socket-path and --fd "
			     "(--help for usage)");
		return -EINVAL;
	}
	if (!o->socket_path && o->fd < 0 && !getenv("LISTEN_FDS")) {
		vdk_tool_msg("give --socket-path or --fd, or start under "
			     "systemd socket activation (--help for usage)");
		return -EINVAL;
	}
	if (o->socket_path &&
	    strlen(o->socket_path) >=
		    sizeof(((struct sockaddr_un *)0)->sun_path)) {
		vdk_tool_msg("--socket-path: path too long: '%s'",
			     o->socket_path);
		return -EINVAL;
	}
	if (o->socket_group) {
		gid_t gid;
		int r = vdk_tool_group_id(o->socket_group, &gid);

		if (!o->socket_path) {
			vdk_tool_msg("--socket-group needs --socket-path (with "
				     "--fd, whoever made the socket sets its "
				     "permissions)");
			return -EINVAL;
		}
		if (r < 0) {
			vdk_tool_msg("--socket-group=%s: %s", o->socket_group,
				     r == -ENOENT ? "no such group"
						  : strerror(-r));
			return -EINVAL;
		}
	}
	return 0;
}

/* ---- logging ------------------------------------------------------------ */

static void log_sink(void *opaque, enum vdk_log_level level, const char *module,
		     const char *msg)
{
	(void)opaque;
	vdk_tool_log_write((int)level, module, msg);
}

void vdk_tool_log_init(const char *prog, int verbosity)
{
	enum vdk_log_level max = VDK_LOG_WARN;

	vdk_tool_log_set_prog(prog);
	if (verbosity > 0)
		max = VDK_LOG_DEBUG;
	vdk_log_set_sink(log_sink, NULL, max);
}

/* ---- serving: one loop, signals on it, the library's server ------------- */

/*
 * SIGINT/SIGTERM/SIGHUP: the handler stops the loop (vdk_loop_epoll_stop()
 * is async-signal-safe: the graceful path, the connection is freed and the
 * device flushed) and arms a 1 s alarm whose handler ends the process. So
 * the program stops within a second whatever any thread is waiting on: the
 * loop may be stuck in a write to a front-end's fd that was made blocking
 * behind our back (see <vdk/vhost_user.h>), where a signalfd on that loop
 * would never be read. No SA_RESTART: the thread the signal lands on leaves
 * a waiting system call with EINTR.
 */
static struct vdk_loop *stop_loop;
static volatile sig_atomic_t stop_signo;

static void on_stop_signal(int signo)
{
	int saved = errno;

	if (!stop_signo) {
		stop_signo = signo;
		alarm(1);
	}
	if (stop_loop)
		vdk_loop_epoll_stop(stop_loop);
	errno = saved;
}

static void on_alarm(int signo)
{
	static const char msg[] = "vdk: shutdown did not finish within 1 s "
				  "of the signal; exiting\n";

	(void)signo;
	(void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
	_exit(128 + (stop_signo ? stop_signo : SIGTERM));
}

int vdk_tool_start(struct vdk_tool *t)
{
	struct sigaction sa = {.sa_handler = on_stop_signal};
	struct sigaction al = {.sa_handler = on_alarm};
	static const int stops[] = {SIGINT, SIGTERM, SIGHUP};
	sigset_t set;
	int ret;

	t->result = 0;
	/* A write to a front-end's pipe whose reader went away is EPIPE. */
	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
		return -errno;
	t->loop = vdk_loop_epoll_new(&ret);
	if (!t->loop)
		return ret;
	stop_loop = t->loop;
	sigemptyset(&sa.sa_mask);
	sigemptyset(&al.sa_mask);
	sigemptyset(&set);
	for (size_t i = 0; i < sizeof(stops) / sizeof(stops[0]); i++) {
		sigaddset(&sa.sa_mask, stops[i]);
		sigaddset(&set, stops[i]);
	}
	sigaddset(&set, SIGALRM);
	for (size_t i = 0; i < sizeof(stops) / sizeof(stops[0]); i++)
		if (sigaction(stops[i], &sa, NULL) < 0)
			return -errno;
	if (sigaction(SIGALRM, &al, NULL) < 0 ||
	    sigprocmask(SIG_UNBLOCK, &set, NULL) < 0)
		return -errno;
	return 0;
}

void vdk_tool_end(struct vdk_tool *t)
{
	stop_loop = NULL;
	vdk_loop_epoll_free(t->loop);
	t->loop = NULL;
}

static void on_server_event(void *opaque, enum vdk_vhost_user_server_event ev,
			    int err)
{
	struct vdk_tool *t = opaque;

	switch (ev) {
	case VDK_VHOST_USER_SERVER_CONNECTED:
		vdk_tool_msg("front-end connected");
		break;
	case VDK_VHOST_USER_SERVER_DISCONNECTED:
		if (err) {
			vdk_tool_msg("front-end connection failed: %s",
				     strerror(-err));
			t->result = err;
		} else {
			vdk_tool_msg("front-end disconnected");
		}
		break;
	case VDK_VHOST_USER_SERVER_DONE:
		vdk_loop_epoll_stop(t->loop);
		break;
	}
}

/* --socket-group: the group may connect (socket_perm.h). The socket is
 * listening already; a member of the group trying before this is refused
 * and retries (QEMU's reconnect), nobody else gains access meanwhile. */
static int share_socket(const struct vdk_tool_opts *o)
{
	gid_t gid;
	int ret;

	if (!o->socket_group || !o->socket_path)
		return 0;
	ret = vdk_tool_group_id(o->socket_group, &gid);
	if (ret == 0)
		ret = vdk_tool_socket_share(o->socket_path, gid);
	if (ret < 0)
		vdk_tool_msg("--socket-group=%s: %s: %s", o->socket_group,
			     o->socket_path, strerror(-ret));
	return ret;
}

int vdk_tool_serve(struct vdk_tool *t, const struct vdk_tool_opts *o,
		   struct vdk_device *dev)
{
	const struct vdk_vhost_user_server_config cfg = {
		.socket_path = o->socket_path,
		.fd = o->fd,
		.max_connections = o->once ? 1 : 0,
		.allow_unsealed = o->allow_unsealed,
		.event = on_server_event,
		.opaque = t,
	};
	struct vdk_vhost_user_server *srv;
	int ret;

	srv = vdk_vhost_user_server_new(&cfg, dev, t->loop, &ret);
	if (!srv) {
		if (ret == -EADDRINUSE)
			vdk_tool_msg("cannot serve: %s: another process "
				     "serves this socket",
				     o->socket_path);
		else if (ret == -EEXIST)
			vdk_tool_msg("cannot serve: %s exists and is not a "
				     "socket",
				     o->socket_path);
		else
			vdk_tool_msg("cannot serve: %s", strerror(-ret));
		t->reported = true;
		return ret;
	}
	t->served = true;
	ret = share_socket(o);
	if (ret < 0) {
		vdk_vhost_user_server_free(srv); /* removes the socket */
		return ret;
	}
	if (o->socket_path)
		vdk_tool_msg("listening on %s", o->socket_path);
	ret = vdk_loop_epoll_run(t->loop);
	if (stop_signo)
		vdk_tool_msg("%s: shutting down", strsignal((int)stop_signo));
	/* Ends the connection (the device drains and resets) and removes
	 * the socket file. */
	vdk_vhost_user_server_free(srv);
	return ret < 0 ? ret : t->result;
}

/* ---- the program ---------------------------------------------------------- */

static void usage(const struct vdk_tool_program *p, FILE *out)
{
	fprintf(out,
		"Usage: %s (--socket-path=PATH | --fd=FDNUM) %s [-v]\n"
		"       %s --print-capabilities\n"
		"       %s --version\n\n",
		p->name, p->synopsis, p->name, p->name);
	if (p->usage)
		p->usage(out);
	else
		fputs(p->help, out);
	if (p->type->keys)
		vdk_tool_settings_help(out, p->type->keys, 0, "  ", "--",
				       p->renames);
	fputs(vdk_tool_common_help, out);
}

/* Option @opt (VDK_TOOL_OPT_FIRST_SETTING + index) sets a device setting.
 * Return: 0, or -EINVAL (reported). */
static int set_setting(const struct vdk_tool_program *p, int opt,
		       const char *arg)
{
	const struct vdk_config_key *k =
		p->type->keys(opt - VDK_TOOL_OPT_FIRST_SETTING);
	char msg[VDK_CONFIG_MSG_LEN] = "";
	size_t n = strlen(k->name);
	int ret = p->set(k->name, arg, msg, sizeof(msg));

	if (ret < 0 && msg[0])
		/* "serial: at most ..." is said as "--serial: at most ..." */
		vdk_tool_msg("--%s%s",
			     vdk_tool_setting_name(p->renames, k->name),
			     strncmp(msg, k->name, n) ? msg : msg + n);
	return ret < 0 ? -EINVAL : 0;
}

/* The long options: the common ones (vdk_tool_common_help; getopt_long()
 * sets the flags in @o itself), the program's, then one per device
 * setting. Return: the table (free()), or NULL. */
static struct option *long_options(const struct vdk_tool_program *p,
				   struct vdk_tool_opts *o)
{
	// clang-format off
	const struct option common[] = {
		{"socket-path", required_argument, NULL, VDK_TOOL_OPT_SOCKET_PATH},
		{"fd", required_argument, NULL, VDK_TOOL_OPT_FD},
		{"socket-group", required_argument, NULL, VDK_TOOL_OPT_SOCKET_GROUP},
		{"print-capabilities", no_argument, &o->print_capabilities, 1},
		{"once", no_argument, &o->once, 1},
		{"keep-listening", no_argument, &o->once, 0},
		{"allow-unsealed-memory", no_argument, &o->allow_unsealed, 1},
		{"stats-socket", required_argument, NULL, VDK_TOOL_OPT_STATS_SOCKET},
		{"log", required_argument, NULL, VDK_TOOL_OPT_LOG},
		{"verbose", no_argument, NULL, 'v'},
		{"version", no_argument, NULL, 'V'},
		{"help", no_argument, NULL, 'h'},
	};
	// clang-format on
	const size_t n_common = sizeof(common) / sizeof(common[0]);
	size_t n = 0, nk = 0, i = n_common;
	const struct vdk_config_key *k;
	struct option *all;

	while (p->options && p->options[n].name)
		n++;
	while (p->type->keys && p->type->keys(nk))
		nk++;
	all = calloc(n_common + n + nk + 1, sizeof(*all));
	if (!all)
		return NULL;
	memcpy(all, common, sizeof(common));
	for (size_t j = 0; j < n; j++)
		all[i++] = p->options[j];
	for (size_t j = 0; j < nk; j++) {
		k = p->type->keys(j);
		all[i++] = (struct option){
			vdk_tool_setting_name(p->renames, k->name),
			k->value ? required_argument : no_argument, NULL,
			VDK_TOOL_OPT_FIRST_SETTING + (int)j};
	}
	return all;
}

/* Parse the command line into @o; 1: exit 0 (--help, --version), 0: go on,
 * -EINVAL: exit 1 (reported). */
static int parse_args(const struct vdk_tool_program *p, struct option *all,
		      struct vdk_tool_opts *o, int argc, char **argv)
{
	struct vdk_tool_cli cli;
	int opt, ret;

	vdk_tool_cli_init(&cli, p->name, all);
	while ((opt = vdk_tool_cli_next(&cli, argc, argv,
					VDK_TOOL_SHORT_OPTIONS)) != -1) {
		ret = vdk_tool_parse_common(o, opt, optarg);
		if (ret < 0)
			return ret;
		if (ret > 0)
			continue;
		switch (opt) {
		case 0: /* a flag, set by getopt_long() */
			break;
		case 'h':
			usage(p, stdout);
			return 1;
		case 'V':
			vdk_tool_cli_version(&cli, VDK_VERSION);
			return 1;
		default:
			if (opt < VDK_TOOL_OPT_FIRST_PRIVATE)
				return -EINVAL; /* reported by cli_next */
			if (opt >= VDK_TOOL_OPT_FIRST_SETTING)
				ret = set_setting(p, opt, optarg);
			else
				ret = p->parse ? p->parse(opt, optarg)
					       : -EINVAL;
			if (ret < 0)
				return ret;
		}
	}
	if (o->print_capabilities) /* abbreviated: --print-cap */
		return 0;
	if (optind < argc)
		return vdk_tool_cli_error(&cli, "unexpected argument '%s'",
					  argv[optind]);
	return 0;
}

/* Serve @dev with the statistics (SIGUSR1, --stats-socket) on the same
 * loop, so that they are answered with or without a front-end. */
static int serve_with_stats(const struct vdk_tool_program *p,
			    struct vdk_tool *t, const struct vdk_tool_opts *o,
			    struct vdk_device *dev)
{
	const char *type = p->type->name;
	const char *name = t->device_name ? t->device_name : type;
	struct vdk_tool_stats st = {.fn = p->type->stats,
				    .opaque = t->stats_opaque};
	int ret;

	vdk_tool_log_set_device(name);
	vdk_tool_stats_init(&st.info, p->name, VDK_VERSION, name, type);
	ret = vdk_tool_stats_start(&st, o->stats_socket);
	if (ret < 0)
		return ret;
	ret = vdk_tool_stats_attach(&st, t->loop);
	if (ret == 0) {
		ret = vdk_tool_serve(t, o, dev);
		if (t->served) /* the counters at exit */
			(void)vdk_tool_stats_log(&st.info, st.fn, st.opaque);
		vdk_tool_stats_detach(&st, t->loop);
	}
	vdk_tool_stats_stop(&st);
	return ret;
}

/* --print-capabilities: the vhost-user spec's "Backend program conventions"
 * JSON document ({"type": ..., "features": [...]}) on stdout. Return: the exit
 * status. */
static int print_capabilities(const struct vdk_tool_program *p)
{
	const char *const *features = p->type->features;
	struct json_object *root = json_object_new_object(), *list = NULL;
	const char *text;
	int ret = 1;

	if (!root ||
	    json_object_object_add(root, "type",
				   json_object_new_string(p->type->name)) < 0)
		goto out;
	if (features && features[0]) {
		list = json_object_new_array();
		if (!list ||
		    json_object_object_add(root, "features", list) < 0) {
			json_object_put(list);
			goto out;
		}
		for (size_t i = 0; features[i]; i++) {
			struct json_object *f =
				json_object_new_string(features[i]);

			if (json_object_array_add(list, f) < 0) {
				json_object_put(f);
				goto out;
			}
		}
	}
	text = json_object_to_json_string_ext(
		root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED);
	ret = text && printf("%s\n", text) >= 0 && fflush(stdout) == 0 ? 0 : 1;
out:
	if (ret)
		vdk_tool_msg("--print-capabilities: cannot write the JSON");
	json_object_put(root);
	return ret;
}

int vdk_tool_main(const struct vdk_tool_program *p, int argc, char **argv)
{
	struct vdk_tool_opts o = {.fd = -1};
	struct option *all;
	struct vdk_device *dev;
	struct vdk_tool t = {0};
	int ret;

	/* The spec: --print-capabilities ignores every other option. */
	if (vdk_tool_cli_has(argc, argv, "print-capabilities"))
		return print_capabilities(p);
	vdk_tool_log_init(p->name, 0); /* names the program in messages */
	all = long_options(p, &o);
	if (!all)
		return 1;
	ret = parse_args(p, all, &o, argc, argv);
	free(all);
	if (ret != 0)
		return ret > 0 ? 0 : 1;
	if (o.print_capabilities)
		return print_capabilities(p);
	if (vdk_tool_check_common(&o) < 0 || (p->check && p->check() < 0))
		return 1;
	vdk_tool_log_open(p->name, o.log_target);
	vdk_tool_log_init(p->name, o.verbosity);
	ret = vdk_tool_start(&t);
	if (ret < 0) {
		vdk_tool_msg("signals and loop: %s", strerror(-ret));
	} else {
		dev = p->create(&t, &ret);
		if (!dev) {
			if (ret < 0)
				vdk_tool_msg("cannot create the device: %s",
					     strerror(-ret));
			ret = -EINVAL;
		} else {
			ret = serve_with_stats(p, &t, &o, dev);
			if (ret < 0 && !t.reported)
				vdk_tool_msg("error: %s", strerror(-ret));
			/* before the loop it is attached to */
			vdk_device_fini(dev);
		}
	}
	vdk_tool_end(&t);
	return ret < 0 ? 1 : 0;
}
