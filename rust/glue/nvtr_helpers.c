// SPDX-License-Identifier: GPL-2.0
/*
 * C helpers shared by nvme_tcp and nvmet_tcp. Each module's own helpers file
 * includes this one, so that each module has a private copy.
 */
#include <linux/bvec.h>
#include <linux/crc32.h>
#include <linux/llist.h>
#include <linux/page_frag_cache.h>
#include <linux/scatterlist.h>
#include <linux/slab.h>
#include <linux/uio.h>
#include <linux/inet.h>
#include <linux/net.h>
#include <linux/tcp.h>
#include <linux/workqueue.h>
#include <net/ip.h>
#include <net/sock.h>
#include <net/tcp.h>

#include "nvtr_helpers.h"

static void nvtr_sk_notify(struct sock *sk, unsigned int ev)
{
	struct nvtr_sk_ctx *ctx;

	read_lock_bh(&sk->sk_callback_lock);
	ctx = sk->sk_user_data;
	if (ctx)
		ctx->event(ctx->owner, ev);
	read_unlock_bh(&sk->sk_callback_lock);
}

static void nvtr_sk_data_ready(struct sock *sk)
{
	nvtr_sk_notify(sk, NVTR_EV_DATA);
}

static void nvtr_sk_write_space(struct sock *sk)
{
	if (sk_stream_is_writeable(sk))
		clear_bit(SOCK_NOSPACE, &sk->sk_socket->flags);
	nvtr_sk_notify(sk, NVTR_EV_WRITE_SPACE);
}

static void nvtr_sk_state_change(struct sock *sk)
{
	nvtr_sk_notify(sk, NVTR_EV_STATE);
}

void nvtr_sk_install(struct socket *sock, struct nvtr_sk_ctx *ctx)
{
	struct sock *sk = sock->sk;

	write_lock_bh(&sk->sk_callback_lock);
	ctx->saved_data_ready = sk->sk_data_ready;
	ctx->saved_write_space = sk->sk_write_space;
	ctx->saved_state_change = sk->sk_state_change;
	sk->sk_user_data = ctx;
	sk->sk_data_ready = nvtr_sk_data_ready;
	sk->sk_write_space = nvtr_sk_write_space;
	sk->sk_state_change = nvtr_sk_state_change;
	write_unlock_bh(&sk->sk_callback_lock);
}

bool nvtr_sk_restore(struct socket *sock, struct nvtr_sk_ctx *ctx)
{
	struct sock *sk = sock->sk;
	bool installed;

	write_lock_bh(&sk->sk_callback_lock);
	installed = sk->sk_user_data == ctx;
	if (installed) {
		sk->sk_user_data = NULL;
		sk->sk_data_ready = ctx->saved_data_ready;
		sk->sk_write_space = ctx->saved_write_space;
		sk->sk_state_change = ctx->saved_state_change;
	}
	write_unlock_bh(&sk->sk_callback_lock);
	return installed;
}

int nvtr_sock_create(unsigned short af, struct socket **res)
{
	return sock_create_kern(&init_net, af, SOCK_STREAM, IPPROTO_TCP, res);
}

bool nvtr_sk_closing(struct socket *sock)
{
	switch (READ_ONCE(sock->sk->sk_state)) {
	case TCP_FIN_WAIT1:
	case TCP_FIN_WAIT2:
	case TCP_CLOSE_WAIT:
	case TCP_LAST_ACK:
	case TCP_CLOSING:
	case TCP_TIME_WAIT:
	case TCP_CLOSE:
		return true;
	default:
		return false;
	}
}

bool nvtr_sk_readable(struct socket *sock)
{
	struct sock *sk = sock->sk;

	return !skb_queue_empty_lockless(&sk->sk_receive_queue) ||
	       READ_ONCE(sk->sk_err) ||
	       (READ_ONCE(sk->sk_shutdown) & RCV_SHUTDOWN);
}

void nvtr_sock_set_nodelay(struct socket *sock)
{
	tcp_sock_set_nodelay(sock->sk);
}

void nvtr_sock_set_reuseaddr(struct socket *sock)
{
	sock_set_reuseaddr(sock->sk);
}

void nvtr_sock_set_priority(struct socket *sock, u32 priority)
{
	sock_set_priority(sock->sk, priority);
}

void nvtr_sock_set_tos(struct socket *sock, int tos)
{
	ip_sock_set_tos(sock->sk, tos);
}

void nvtr_sock_set_syncnt(struct socket *sock, int count)
{
	tcp_sock_set_syncnt(sock->sk, count);
}

void nvtr_sock_no_linger(struct socket *sock)
{
	sock_no_linger(sock->sk);
}

void nvtr_sock_set_rcvtimeo(struct socket *sock, long timeo_jiffies)
{
	WRITE_ONCE(sock->sk->sk_rcvtimeo, timeo_jiffies);
}

void nvtr_sock_set_sndtimeo(struct socket *sock, long timeo_jiffies)
{
	WRITE_ONCE(sock->sk->sk_sndtimeo, timeo_jiffies);
}

void nvtr_sock_set_noio(struct socket *sock)
{
	sock->sk->sk_allocation = GFP_ATOMIC;
	sock->sk->sk_use_task_frag = false;
	sk_set_memalloc(sock->sk);
}

int nvtr_addr_parse(unsigned short af, const char *addr, const char *port,
		    struct sockaddr_storage *ss)
{
	return inet_pton_with_scope(&init_net, af, addr, port, ss);
}

int nvtr_addr_format(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	return scnprintf(buf, len, "%pISpc", ss);
}

int nvtr_addr_format_ip(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	return scnprintf(buf, len, "%pISc", ss);
}

bool nvtr_addr_is_any(const struct sockaddr_storage *ss)
{
	return inet_addr_is_any((struct sockaddr_storage *)ss);
}

unsigned short nvtr_addr_family(const struct sockaddr_storage *ss)
{
	return ss->ss_family;
}

int nvtr_sock_incoming_cpu(struct socket *sock)
{
	int cpu = READ_ONCE(sock->sk->sk_incoming_cpu);

	if (cpu < 0 || cpu >= nr_cpu_ids || !cpu_online(cpu))
		return WORK_CPU_UNBOUND;
	return cpu;
}

struct workqueue_struct *nvtr_alloc_io_wq(const char *name, bool unbound)
{
	return alloc_workqueue("%s", WQ_MEM_RECLAIM | WQ_HIGHPRI | WQ_SYSFS |
			       (unbound ? WQ_UNBOUND : WQ_PERCPU), 0, name);
}

bool nvtr_net_ratelimit(void)
{
	return net_ratelimit();
}

void nvtr_warn(const char *what)
{
	WARN(1, "%s\n", what);
}

u32 nvtr_crc32c(u32 crc, const void *data, size_t len)
{
	return crc32c(crc, data, len);
}

bool nvtr_llist_add(struct llist_node *node, struct llist_head *head)
{
	return llist_add(node, head);
}

struct llist_node *nvtr_llist_del_all_fifo(struct llist_head *head)
{
	return llist_reverse_order(llist_del_all(head));
}

void nvtr_init_llist_head(struct llist_head *head)
{
	init_llist_head(head);
}

/* The entry of sg holding byte *offset of it; *offset becomes relative to it. */
static struct scatterlist *nvtr_sg_seek(struct scatterlist *sg,
					unsigned int *offset)
{
	for (; sg && *offset >= sg->length; sg = sg_next(sg))
		*offset -= sg->length;
	return sg;
}

/*
 * Segment table for one socket call, owned by one queue: the first n of max
 * entries are in use and cover total bytes.
 */
struct nvtr_bvecs {
	unsigned int max;
	unsigned int n;
	size_t total;
	struct bio_vec bv[];
};

struct nvtr_bvecs *nvtr_bvecs_alloc(unsigned int n)
{
	struct nvtr_bvecs *bvs = kmalloc(struct_size(bvs, bv, n), GFP_KERNEL);

	if (bvs) {
		bvs->max = n;
		bvs->n = 0;
		bvs->total = 0;
	}
	return bvs;
}

void nvtr_bvecs_free(struct nvtr_bvecs *bvs)
{
	kfree(bvs);
}

void nvtr_bvecs_clear(struct nvtr_bvecs *bvs)
{
	bvs->n = 0;
	bvs->total = 0;
}

bool nvtr_bvecs_add_virt(struct nvtr_bvecs *bvs, void *p, unsigned int len)
{
	if (bvs->n >= bvs->max)
		return false;
	bvec_set_virt(&bvs->bv[bvs->n++], p, len);
	bvs->total += len;
	return true;
}

unsigned int nvtr_bvecs_add_sg(struct nvtr_bvecs *bvs, struct scatterlist *sg,
			       unsigned int offset, unsigned int len)
{
	unsigned int added = 0;

	sg = nvtr_sg_seek(sg, &offset);
	for (; sg && len && bvs->n < bvs->max; sg = sg_next(sg)) {
		unsigned int seg = min(sg->length - offset, len);

		bvec_set_page(&bvs->bv[bvs->n++], sg_page(sg), seg,
			      sg->offset + offset);
		added += seg;
		len -= seg;
		offset = 0;
	}
	bvs->total += added;
	return added;
}

bool nvtr_bvecs_full(const struct nvtr_bvecs *bvs)
{
	return bvs->n >= bvs->max;
}

int nvtr_sock_recv_bvecs(struct socket *sock, struct nvtr_bvecs *bvs)
{
	struct msghdr msg = { .msg_flags = MSG_DONTWAIT | MSG_NOSIGNAL };

	if (!bvs->n)
		return -EINVAL;
	iov_iter_bvec(&msg.msg_iter, ITER_DEST, bvs->bv, bvs->n, bvs->total);
	return sock_recvmsg(sock, &msg, msg.msg_flags);
}

int nvtr_sock_send_bvecs(struct socket *sock, struct nvtr_bvecs *bvs, bool more)
{
	struct msghdr msg = {
		.msg_flags = MSG_DONTWAIT | MSG_NOSIGNAL | MSG_SPLICE_PAGES,
	};

	if (!bvs->n)
		return -EINVAL;
	if (more)
		msg.msg_flags |= MSG_MORE;
	iov_iter_bvec(&msg.msg_iter, ITER_SOURCE, bvs->bv, bvs->n, bvs->total);
	return sock_sendmsg(sock, &msg);
}

struct page_frag_cache *nvtr_frag_cache_alloc(void)
{
	/* All zeroes is an empty cache (page_frag_cache_init). */
	return kzalloc(sizeof(struct page_frag_cache), GFP_KERNEL);
}

void nvtr_frag_cache_free(struct page_frag_cache *nc)
{
	page_frag_cache_drain(nc);
	kfree(nc);
}

void *nvtr_frag_alloc(struct page_frag_cache *nc, unsigned int size)
{
	return page_frag_alloc_align(nc, size, GFP_KERNEL | __GFP_NOWARN, size);
}

void nvtr_frag_free(void *p)
{
	page_frag_free(p);
}

void nvtr_sg_copy_in(struct scatterlist *sg, unsigned int offset,
		     const void *buf, unsigned int len)
{
	sg = nvtr_sg_seek(sg, &offset);
	for (; sg && len; sg = sg_next(sg)) {
		unsigned int seg = min(sg->length - offset, len);

		/* sgl_alloc() pages are never highmem (GFP_KERNEL). */
		memcpy(sg_virt(sg) + offset, buf, seg);
		buf += seg;
		len -= seg;
		offset = 0;
	}
}

u32 nvtr_sg_crc32c(u32 crc, struct scatterlist *sg, unsigned int offset,
		   unsigned int len)
{
	sg = nvtr_sg_seek(sg, &offset);
	for (; sg && len; sg = sg_next(sg)) {
		unsigned int seg = min(sg->length - offset, len);

		/* sgl_alloc() pages are never highmem (GFP_KERNEL). */
		crc = crc32c(crc, sg_virt(sg) + offset, seg);
		len -= seg;
		offset = 0;
	}
	return crc;
}
