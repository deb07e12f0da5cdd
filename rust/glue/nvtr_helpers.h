/* SPDX-License-Identifier: GPL-2.0 */
/*
 * C helpers shared by nvme_tcp and nvmet_tcp: socket callbacks and the static
 * inline or macro-only kernel interfaces that Rust cannot call directly.
 * Everything here is prefixed nvtr_ (vmlinux exports rust_helper_*).
 */
#ifndef NVTR_HELPERS_H
#define NVTR_HELPERS_H

#include <linux/types.h>
#include <linux/socket.h>

struct socket;
struct sock;

/* Events passed to nvtr_sk_ctx.event. */
#define NVTR_EV_DATA		1	/* sk_data_ready */
#define NVTR_EV_WRITE_SPACE	2	/* sk_write_space */
#define NVTR_EV_STATE		3	/* sk_state_change */

/*
 * Owner of a socket's callbacks. While installed, sk_user_data points here and
 * `event` runs in softirq context under read_lock_bh(sk_callback_lock): it may
 * only queue work. nvtr_sk_restore() returns once no event can still run.
 */
struct nvtr_sk_ctx {
	void (*event)(void *owner, unsigned int ev);
	void *owner;
	/* The socket's own callbacks, saved by nvtr_sk_install(). */
	void (*saved_data_ready)(struct sock *sk);
	void (*saved_write_space)(struct sock *sk);
	void (*saved_state_change)(struct sock *sk);
};

void nvtr_sk_install(struct socket *sock, struct nvtr_sk_ctx *ctx);
bool nvtr_sk_restore(struct socket *sock, struct nvtr_sk_ctx *ctx);

/* A TCP socket of family af in the initial network namespace. */
int nvtr_sock_create(unsigned short af, struct socket **res);
/* True once the connection is closing or closed (FIN or RST seen or sent). */
/*
 * Whether a receive would find something (data, an error or the peer's FIN),
 * without taking the socket lock. Data queued after a false answer is always
 * followed by a data_ready callback.
 */
bool nvtr_sk_readable(struct socket *sock);
bool nvtr_sk_closing(struct socket *sock);
/* Options and per-socket settings (no sockopt syscalls in the kernel). */
void nvtr_sock_set_nodelay(struct socket *sock);
void nvtr_sock_set_reuseaddr(struct socket *sock);
void nvtr_sock_set_priority(struct socket *sock, u32 priority);
void nvtr_sock_set_tos(struct socket *sock, int tos);
void nvtr_sock_set_syncnt(struct socket *sock, int count);
void nvtr_sock_no_linger(struct socket *sock);
void nvtr_sock_set_rcvtimeo(struct socket *sock, long timeo_jiffies);
void nvtr_sock_set_sndtimeo(struct socket *sock, long timeo_jiffies);
/* Socket in the storage-I/O path: atomic allocations, memalloc reserves. */
void nvtr_sock_set_noio(struct socket *sock);

/* Parses "addr" and "port" for family af (AF_INET, AF_INET6, AF_UNSPEC). */
int nvtr_addr_parse(unsigned short af, const char *addr, const char *port,
		    struct sockaddr_storage *ss);
/* Formats addr as "ip:port" / "[ip6]:port"; returns the length written. */
int nvtr_addr_format(const struct sockaddr_storage *ss, char *buf, size_t len);
/* Formats only the address: "1.2.3.4" / "::1". */
int nvtr_addr_format_ip(const struct sockaddr_storage *ss, char *buf, size_t len);
bool nvtr_addr_is_any(const struct sockaddr_storage *ss);
unsigned short nvtr_addr_family(const struct sockaddr_storage *ss);

/* The CPU that receives the socket's packets, if known and online, else
 * WORK_CPU_UNBOUND (for queue_work_on). */
int nvtr_sock_incoming_cpu(struct socket *sock);

/*
 * A high-priority, reclaim-safe workqueue, per-CPU or unbound, visible in
 * sysfs (alloc_workqueue is variadic).
 */
struct workqueue_struct *nvtr_alloc_io_wq(const char *name, bool unbound);

/* The networking stack's shared limit on log lines caused by peers. */
bool nvtr_net_ratelimit(void);

/* A kernel warning (WARN) with a backtrace, for states the code never reaches. */
void nvtr_warn(const char *what);

/* CRC32C as the kernel computes it (accelerated where the CPU allows). */
u32 nvtr_crc32c(u32 crc, const void *data, size_t len);

/* Lock-free lists (llist_add/llist_del_all are static inline). */
struct llist_node;
struct llist_head;
bool nvtr_llist_add(struct llist_node *node, struct llist_head *head);
/* Takes every entry, oldest first. */
struct llist_node *nvtr_llist_del_all_fifo(struct llist_head *head);
void nvtr_init_llist_head(struct llist_head *head);

/*
 * Socket I/O straight to and from pages, without blocking: the number of
 * bytes moved, -EAGAIN when nothing can move now, 0 at EOF (receive), or
 * another -errno. One call moves at most as many segments as its table
 * `bvs` holds: its owner sizes it so that one call usually covers a whole
 * PDU (each receive call may make TCP send an ACK).
 *
 * Receives go into the segments of the table, and sends splice (never
 * copy) what it holds; its owner fills it: pieces of a
 * scatterlist (nvtr_bvecs_add_sg, the bytes added) and page fragments
 * (nvtr_bvecs_add_virt, false when the table is full). `more` sets
 * MSG_MORE.
 */
struct scatterlist;
struct nvtr_bvecs;
struct nvtr_bvecs *nvtr_bvecs_alloc(unsigned int n);
void nvtr_bvecs_free(struct nvtr_bvecs *bvs);
void nvtr_bvecs_clear(struct nvtr_bvecs *bvs);
bool nvtr_bvecs_add_virt(struct nvtr_bvecs *bvs, void *p, unsigned int len);
unsigned int nvtr_bvecs_add_sg(struct nvtr_bvecs *bvs, struct scatterlist *sg,
			       unsigned int offset, unsigned int len);
bool nvtr_bvecs_full(const struct nvtr_bvecs *bvs);
int nvtr_sock_recv_bvecs(struct socket *sock, struct nvtr_bvecs *bvs);
int nvtr_sock_send_bvecs(struct socket *sock, struct nvtr_bvecs *bvs, bool more);

/*
 * Page fragments for PDU headers that are spliced into the socket: each is
 * fresh memory, never rewritten while TCP may still (re)transmit it, and
 * freed (nvtr_frag_free) once sent; the socket holds its own references.
 * nvtr_frag_alloc aligns a fragment to its size (a power of two), so it
 * never crosses a page. A cache is used by one thread at a time; its
 * fragments may outlive it.
 */
struct page_frag_cache;
struct page_frag_cache *nvtr_frag_cache_alloc(void);
void nvtr_frag_cache_free(struct page_frag_cache *nc);
void *nvtr_frag_alloc(struct page_frag_cache *nc, unsigned int size);
void nvtr_frag_free(void *p);

/* Copies `len` bytes of buf into sg from byte `offset` of it. */
void nvtr_sg_copy_in(struct scatterlist *sg, unsigned int offset,
		     const void *buf, unsigned int len);
/* CRC32C (not inverted) of `len` bytes of sg from byte `offset`. */
u32 nvtr_sg_crc32c(u32 crc, struct scatterlist *sg, unsigned int offset,
		   unsigned int len);

#endif /* NVTR_HELPERS_H */
