// SPDX-License-Identifier: GPL-2.0
/*
 * QEMU TCG plugin for tools/profile/insn-count: counts the guest instructions
 * executed per translation block. A thread tails the guest console log
 * (log=FILE) for "QPLUG reset" and "QPLUG dump NAME" lines (the guest writes
 * them to /dev/kmsg) and writes "vaddr insns execs cross-page-entries" of every
 * block run since the last reset to out=DIR/NAME.txt. It declares the few
 * functions of QEMU's stable plugin C API it uses itself.
 */
#include <stdint.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <unistd.h>

typedef uint64_t qemu_plugin_id_t;
typedef struct { const char *target_name; struct { int min, cur; } version; bool system_emulation; } qemu_info_t;
struct qemu_plugin_tb;
typedef void (*tb_trans_cb)(qemu_plugin_id_t, struct qemu_plugin_tb *);
typedef void (*vcpu_udata_cb)(unsigned int, void *);
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t, tb_trans_cb);
void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *, vcpu_udata_cb, int flags, void *);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *);
uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *);
struct qemu_plugin_insn;
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *, size_t);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *);

__attribute__((visibility("default"))) int qemu_plugin_version = 2;

struct blk { uint64_t vaddr; uint64_t n; uint64_t execs; uint64_t xin; uint64_t end; struct blk *next; };
static struct blk *prev[64];
static struct blk *head;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static const char *logpath = "/tmp/console.log", *outdir = ".";

static void exec_cb(unsigned int vcpu, void *ud)
{
	struct blk *b = ud, *p = prev[vcpu & 63];
	__atomic_fetch_add(&b->execs, 1, __ATOMIC_RELAXED);
	if (p && ((p->end ^ b->vaddr) >> 12))
		__atomic_fetch_add(&b->xin, 1, __ATOMIC_RELAXED);
	prev[vcpu & 63] = b;
}

static void trans_cb(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
	struct blk *b = calloc(1, sizeof(*b));
	b->vaddr = qemu_plugin_tb_vaddr(tb);
	b->n = qemu_plugin_tb_n_insns(tb);
	b->end = qemu_plugin_insn_vaddr(qemu_plugin_tb_get_insn(tb, b->n - 1));
	pthread_mutex_lock(&lock);
	b->next = head;
	head = b;
	pthread_mutex_unlock(&lock);
	qemu_plugin_register_vcpu_tb_exec_cb(tb, exec_cb, 0, b);
}

static void dump(const char *name)
{
	char path[4096];
	FILE *f = NULL;
	if (name) {
		snprintf(path, sizeof(path), "%s/%s.txt", outdir, name);
		f = fopen(path, "w");
	}
	pthread_mutex_lock(&lock);
	for (struct blk *b = head; b; b = b->next) {
		uint64_t e = __atomic_exchange_n(&b->execs, 0, __ATOMIC_RELAXED);
		uint64_t x = __atomic_exchange_n(&b->xin, 0, __ATOMIC_RELAXED);
		if (f && e)
			fprintf(f, "%llx %llu %llu %llu\n", (unsigned long long)b->vaddr,
				(unsigned long long)b->n, (unsigned long long)e, (unsigned long long)x);
	}
	pthread_mutex_unlock(&lock);
	if (f)
		fclose(f);
}

static void *watch(void *arg)
{
	long off = 0;
	char line[1024];
	for (;;) {
		FILE *f = fopen(logpath, "r");
		if (f) {
			fseek(f, off, SEEK_SET);
			while (fgets(line, sizeof(line), f)) {
				if (!strchr(line, '\n'))
					break;
				off = ftell(f);
				char *p = strstr(line, "QPLUG ");
				if (!p)
					continue;
				p += 6;
				if (!strncmp(p, "reset", 5))
					dump(NULL);
				else if (!strncmp(p, "dump ", 5)) {
					char *n = p + 5;
					n[strcspn(n, " \r\n")] = 0;
					dump(n);
				}
			}
			fclose(f);
		}
		usleep(50000);
	}
	return NULL;
}

__attribute__((visibility("default")))
int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv)
{
	pthread_t t;
	for (int i = 0; i < argc; i++) {
		if (!strncmp(argv[i], "log=", 4))
			logpath = argv[i] + 4;
		else if (!strncmp(argv[i], "out=", 4))
			outdir = argv[i] + 4;
	}
	fprintf(stderr, "tbcount: plugin api %d..%d\n", info->version.min, info->version.cur);
	qemu_plugin_register_vcpu_tb_trans_cb(id, trans_cb);
	pthread_create(&t, NULL, watch, NULL);
	return 0;
}
