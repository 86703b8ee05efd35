#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""mkkernel.py - wrap raw guest code in a kernel image vdk-vmm boots.

  mkkernel.py pvh CODE OUT        ELF32 (EM_386) with one PT_LOAD segment at
                                  1 MiB holding CODE, entered there through a
                                  XEN_ELFNOTE_PHYS32_ENTRY (18) note in a
                                  PT_NOTE segment (Xen docs/misc/pvh.rst)
  mkkernel.py bzimage CODE OUT    bzImage: boot sector + one setup sector
      [--version 0x20f] [--no-64] with a setup header (Linux boot.rst), then
                                  CODE as the protected-mode kernel; the
                                  64-bit entry is CODE offset 0x200
  mkkernel.py elf-no-note OUT     an ELF32 with a PT_LOAD but no PVH note

Used by tests/integration/vmm_*.sh; no dependencies beyond Python 3.
"""
import struct
import sys

LOAD = 0x100000


def elf32(code, note=True):
    ehdr_size, phdr_size = 52, 32
    phnum = 2 if note else 1
    note_off = ehdr_size + phnum * phdr_size
    note_bytes = struct.pack("<III4sI", 4, 4, 18, b"Xen\0", LOAD)
    code_off = 0x100
    out = bytearray(code_off)
    out[0:16] = b"\x7fELF" + bytes([1, 1, 1]) + bytes(9)
    struct.pack_into("<HHIIIIIHHHHHH", out, 16, 2, 3, 1, LOAD, ehdr_size, 0,
                     0, ehdr_size, phdr_size, phnum, 0, 0, 0)
    # PT_LOAD: type, offset, vaddr, paddr, filesz, memsz, flags, align
    struct.pack_into("<IIIIIIII", out, ehdr_size, 1, code_off, LOAD, LOAD,
                     len(code), len(code), 5, 4)
    if note:
        struct.pack_into("<IIIIIIII", out, ehdr_size + phdr_size, 4, note_off,
                         0, 0, len(note_bytes), len(note_bytes), 4, 4)
        out[note_off:note_off + len(note_bytes)] = note_bytes
    return bytes(out) + code


def bzimage(code, version=0x020F, kernel64=True):
    setup = bytearray(1024)  # boot sector + setup_sects (1) sectors
    setup[0x1F1] = 1  # setup_sects
    struct.pack_into("<H", setup, 0x1FE, 0xAA55)  # boot_flag
    setup[0x200:0x202] = b"\xeb\x66"  # jump: header runs to 0x268
    setup[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", setup, 0x206, version)
    setup[0x211] = 0x01  # loadflags: LOADED_HIGH
    struct.pack_into("<I", setup, 0x214, LOAD)  # code32_start
    struct.pack_into("<I", setup, 0x22C, 0x7FFFFFFF)  # initrd_addr_max
    struct.pack_into("<I", setup, 0x230, 0x200000)  # kernel_alignment
    setup[0x234] = 1  # relocatable_kernel
    struct.pack_into("<H", setup, 0x236, 0x3 if kernel64 else 0x0)
    struct.pack_into("<I", setup, 0x238, 2047)  # cmdline_size
    struct.pack_into("<I", setup, 0x260, max(len(code), 0x10000))  # init_size
    return bytes(setup) + code


def main(argv):
    if len(argv) >= 3 and argv[1] == "elf-no-note":
        data = elf32(b"\xf4\xeb\xfd", note=False)
        out = argv[2]
    elif len(argv) >= 4 and argv[1] in ("pvh", "bzimage"):
        code = open(argv[2], "rb").read()
        out = argv[3]
        if argv[1] == "pvh":
            data = elf32(code)
        else:
            version, k64, rest = 0x020F, True, argv[4:]
            while rest:
                if rest[0] == "--version":
                    version, rest = int(rest[1], 0), rest[2:]
                elif rest[0] == "--no-64":
                    k64, rest = False, rest[1:]
                else:
                    sys.exit("mkkernel.py: unknown option " + rest[0])
            data = bzimage(code, version, k64)
    else:
        sys.exit(__doc__)
    with open(out, "wb") as f:
        f.write(data)


if __name__ == "__main__":
    main(sys.argv)
