#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# vdk-testguest under vdk-vmm --transport pci: the checks of
# testguest_vmm.sh with every device a virtio-pci function on vdk-vmm's PCI
# host bridge (found through ports 0xCF8/0xCFC, BARs as vdk-vmm placed
# them), plus the hostile PCI checks. Same exit codes and environment.
TESTGUEST_TRANSPORT=pci exec "$(dirname "$0")/testguest_vmm.sh" "$@"
