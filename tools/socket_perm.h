/* SPDX-License-Identifier: Apache-2.0 */
/*
 * --socket-group: who may connect to a backend's socket. Connecting to a
 * Unix socket needs write permission on it; by default the socket's mode
 * follows the umask (usually only its owner can connect). With
 * --socket-group=GROUP the socket belongs to GROUP with mode 0660, so that a
 * front-end running as another user of that group (QEMU under libvirt:
 * libvirt-qemu, or kvm) can connect, as virtiofsd's --socket-group does.
 */
#ifndef VDK_TOOLS_SOCKET_PERM_H
#define VDK_TOOLS_SOCKET_PERM_H

#include <sys/types.h>

/**
 * vdk_tool_group_id() - resolve @group, a group name or a decimal gid.
 * Return: 0 and *@gid; -ENOENT if there is no such group; -errno of the
 * group database.
 */
int vdk_tool_group_id(const char *group, gid_t *gid);

/**
 * vdk_tool_socket_share() - give the socket file at @path to group @gid
 * (owner unchanged) with mode 0660 (owner and group may connect). Needs
 * membership of @gid, or CAP_CHOWN.
 * Return: 0, or -errno of chown() or chmod().
 */
int vdk_tool_socket_share(const char *path, gid_t gid);

#endif /* VDK_TOOLS_SOCKET_PERM_H */
