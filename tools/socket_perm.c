// SPDX-License-Identifier: Apache-2.0
/*
 * --socket-group (socket_perm.h).
 */
#include "socket_perm.h"

#include <errno.h>
#include <grp.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

int vdk_tool_group_id(const char *group, gid_t *gid)
{
	struct group gr, *res = NULL;
	char buf[4096];
	char *end;
	unsigned long v;
	int r;

	if (!group || !*group)
		return -EINVAL;
	if (*group >= '0' && *group <= '9') {
		errno = 0;
		v = strtoul(group, &end, 10);
		if (errno || *end || v >= (gid_t)-1)
			return -EINVAL;
		*gid = (gid_t)v;
		return 0;
	}
	r = getgrnam_r(group, &gr, buf, sizeof(buf), &res);
	if (r)
		return -r;
	if (!res)
		return -ENOENT;
	*gid = res->gr_gid;
	return 0;
}

int vdk_tool_socket_share(const char *path, gid_t gid)
{
	if (chown(path, (uid_t)-1, gid) < 0)
		return -errno;
	if (chmod(path, 0660) < 0)
		return -errno;
	return 0;
}
