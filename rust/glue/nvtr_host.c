// SPDX-License-Identifier: GPL-2.0
/*
 * C helpers for nvme_tcp: nvme-core's and blk-mq's static inlines, a
 * request's data pages as socket I/O, and the choice of I/O CPUs. Included by
 * drivers/nvme/host/nvme_tcp_helpers.c.
 */
#include <linux/blk-mq.h>
#include <linux/netdevice.h>
#include <linux/nsproxy.h>
#include <linux/skbuff.h>
#include <net/sock.h>
#include "host/nvme.h"
#include "host/fabrics.h"
#include "nvtr_host.h"

void nvtr_init_reset_work(struct nvme_ctrl *ctrl, void (*fn)(struct work_struct *work))
{
	INIT_WORK(&ctrl->reset_work, fn);
}

struct nvme_ctrl *nvtr_reset_work_ctrl(struct work_struct *work)
{
	return container_of(work, struct nvme_ctrl, reset_work);
}

unsigned int nvtr_ctrl_state(struct nvme_ctrl *ctrl)
{
	return nvme_ctrl_state(ctrl);
}

bool nvtr_check_ready(struct nvme_ctrl *ctrl, struct request *rq, bool queue_live)
{
	return nvme_check_ready(ctrl, rq, queue_live);
}

unsigned int nvtr_nr_io_queues(struct nvmf_ctrl_options *opts)
{
	return nvmf_nr_io_queues(opts);
}

void nvtr_start_request(struct request *rq)
{
	nvme_start_request(rq);
}

void nvtr_complete_rq(struct request *rq, __le16 status, __le64 result)
{
	union nvme_result res = { .u64 = result };

	if (!nvme_try_complete_req(rq, status, res))
		nvme_complete_rq(rq);
}

void nvtr_complete_aen(struct nvme_ctrl *ctrl, __le16 status, __le64 result)
{
	union nvme_result res = { .u64 = result };

	nvme_complete_async_event(ctrl, status, &res);
}

void nvtr_complete_timed_out(struct request *rq)
{
	nvmf_complete_timed_out_request(rq);
}

struct request *nvtr_tag_to_rq(struct blk_mq_tag_set *set, unsigned int hctx_idx,
			       unsigned int tag)
{
	if (!set->tags || hctx_idx >= set->nr_hw_queues || !set->tags[hctx_idx])
		return NULL;
	return blk_mq_tag_to_rq(set->tags[hctx_idx], tag);
}

unsigned int nvtr_rq_data_len(struct request *rq)
{
	return blk_rq_nr_phys_segments(rq) ? blk_rq_payload_bytes(rq) : 0;
}

bool nvtr_rq_is_write(struct request *rq)
{
	return rq_data_dir(rq) == WRITE;
}

void *nvtr_rq_queue(struct request *rq)
{
	return rq->mq_hctx->driver_data;
}

/*
 * Calls fn for each piece of rq's data in [offset, offset + len), in order,
 * until it returns false; returns the bytes of the pieces it accepted. A
 * piece is one (possibly multi-page) segment of the request. Inlined into
 * each caller, so that fn is a direct call there (one per 4k read).
 */
static __always_inline unsigned int
nvtr_rq_walk(struct request *rq, unsigned int offset, unsigned int len,
	     bool (*fn)(void *ctx, const struct bio_vec *bv), void *ctx)
{
	struct req_iterator iter;
	struct bio_vec bv;
	unsigned int done = 0;

	if (rq->rq_flags & RQF_SPECIAL_PAYLOAD) {
		bv = rq->special_vec;
		if (offset >= bv.bv_len)
			return 0;
		bv.bv_offset += offset;
		bv.bv_len = min(bv.bv_len - offset, len);
		return fn(ctx, &bv) ? bv.bv_len : 0;
	}
	/* The loop advances by bv.bv_len: pieces are cut from a copy. */
	rq_for_each_bvec(bv, rq, iter) {
		struct bio_vec piece = bv;

		if (offset >= bv.bv_len) {
			offset -= bv.bv_len;
			continue;
		}
		piece.bv_offset += offset;
		piece.bv_len = min(bv.bv_len - offset, len - done);
		offset = 0;
		if (!fn(ctx, &piece))
			goto out;
		done += piece.bv_len;
		if (done == len)
			goto out;
	}
out:
	return done;
}

static bool nvtr_rq_add_bvec(void *ctx, const struct bio_vec *bv)
{
	struct nvtr_bvecs *bvs = ctx;

	if (bvs->n >= bvs->max)
		return false;
	bvs->bv[bvs->n++] = *bv;
	bvs->total += bv->bv_len;
	return true;
}

unsigned int nvtr_rq_map(struct nvtr_bvecs *bvs, struct request *rq,
			 unsigned int offset, unsigned int len)
{
	nvtr_bvecs_clear(bvs);
	return len ? nvtr_rq_walk(rq, offset, len, nvtr_rq_add_bvec, bvs) : 0;
}

int nvtr_skb_copy_bvecs(const struct sk_buff *skb, unsigned int offset,
			struct nvtr_bvecs *bvs, unsigned int max)
{
	unsigned int len = min(bvs->total, max);
	struct iov_iter iter;
	int ret;

	if (!len || len > INT_MAX)
		return -EINVAL;
	iov_iter_bvec(&iter, ITER_DEST, bvs->bv, bvs->n, len);
	ret = skb_copy_datagram_iter(skb, offset, &iter, len);
	return ret ? ret : len;
}

struct nvtr_read_desc {
	nvtr_read_fn fn;
	void *ctx;
};

static int nvtr_read_actor(read_descriptor_t *desc, struct sk_buff *skb,
			   unsigned int offset, size_t len)
{
	struct nvtr_read_desc *d = desc->arg.data;

	return d->fn(d->ctx, skb, offset, min_t(size_t, len, INT_MAX));
}

int nvtr_sock_read(struct socket *sock, nvtr_read_fn fn, void *ctx)
{
	struct nvtr_read_desc d = { .fn = fn, .ctx = ctx };
	read_descriptor_t desc = { .arg.data = &d, .count = 1 };
	int ret;

	lock_sock(sock->sk);
	ret = sock->ops->read_sock(sock->sk, &desc, nvtr_read_actor);
	release_sock(sock->sk);
	return ret;
}

int nvtr_sock_send_rq(struct socket *sock, struct nvtr_bvecs *bvs,
		      struct request *rq, unsigned int offset, unsigned int len,
		      bool more)
{
	struct msghdr msg = {
		.msg_flags = MSG_DONTWAIT | MSG_NOSIGNAL | MSG_SPLICE_PAGES,
	};
	unsigned int i;

	if (!nvtr_rq_map(bvs, rq, offset, len))
		return -EINVAL;
	for (i = 0; i < bvs->n; i++)
		if (!sendpages_ok(bvs->bv[i].bv_page, bvs->bv[i].bv_len,
				  bvs->bv[i].bv_offset))
			msg.msg_flags &= ~MSG_SPLICE_PAGES;
	if (more)
		msg.msg_flags |= MSG_MORE;
	iov_iter_bvec(&msg.msg_iter, ITER_SOURCE, bvs->bv, bvs->n, bvs->total);
	return sock_sendmsg(sock, &msg);
}

/* Calls fn on each page-sized (mapped) part of bv. */
static void nvtr_bvec_map_each(const struct bio_vec *bv,
			       void (*fn)(void *ctx, void *p, unsigned int len),
			       void *ctx)
{
	unsigned int off = bv->bv_offset, left = bv->bv_len;

	while (left) {
		struct page *page = bv->bv_page + (off >> PAGE_SHIFT);
		unsigned int in_page = offset_in_page(off);
		unsigned int seg = min_t(unsigned int, left, PAGE_SIZE - in_page);
		void *p = kmap_local_page(page);

		fn(ctx, p + in_page, seg);
		kunmap_local(p);
		off += seg;
		left -= seg;
	}
}

struct nvtr_copy_ctx {
	const u8 *buf;
};

static void nvtr_copy_part(void *ctx, void *p, unsigned int len)
{
	struct nvtr_copy_ctx *c = ctx;

	memcpy(p, c->buf, len);
	c->buf += len;
}

static bool nvtr_copy_bvec(void *ctx, const struct bio_vec *bv)
{
	nvtr_bvec_map_each(bv, nvtr_copy_part, ctx);
	return true;
}

void nvtr_rq_copy_in(struct request *rq, unsigned int offset, const void *buf,
		     unsigned int len)
{
	struct nvtr_copy_ctx c = { .buf = buf };

	nvtr_rq_walk(rq, offset, len, nvtr_copy_bvec, &c);
}

static void nvtr_crc_part(void *ctx, void *p, unsigned int len)
{
	u32 *crc = ctx;

	*crc = crc32c(*crc, p, len);
}

static bool nvtr_crc_bvec(void *ctx, const struct bio_vec *bv)
{
	nvtr_bvec_map_each(bv, nvtr_crc_part, ctx);
	return true;
}

u32 nvtr_rq_crc32c(u32 crc, struct request *rq, unsigned int offset, unsigned int len)
{
	nvtr_rq_walk(rq, offset, len, nvtr_crc_bvec, &crc);
	return crc;
}

/* Queues of this module whose I/O work runs on each CPU. */
static atomic_t nvtr_cpu_queues[NR_CPUS];

int nvtr_io_cpu_get(struct blk_mq_tag_set *set, unsigned int type, unsigned int hctx_idx)
{
	const unsigned int *mq_map;
	int cpu, io_cpu = WORK_CPU_UNBOUND, min_queues = INT_MAX;

	if (type >= set->nr_maps || !set->map[type].mq_map)
		return WORK_CPU_UNBOUND;
	mq_map = set->map[type].mq_map;
	for_each_online_cpu(cpu) {
		int n = atomic_read(&nvtr_cpu_queues[cpu]);

		if (mq_map[cpu] != hctx_idx)
			continue;
		if (n < min_queues) {
			io_cpu = cpu;
			min_queues = n;
		}
	}
	if (io_cpu != WORK_CPU_UNBOUND)
		atomic_inc(&nvtr_cpu_queues[io_cpu]);
	return io_cpu;
}

void nvtr_io_cpu_put(int cpu)
{
	if (cpu >= 0 && cpu < NR_CPUS)
		atomic_dec(&nvtr_cpu_queues[cpu]);
}

bool nvtr_netdev_exists(const char *name)
{
	struct net_device *dev;

	rcu_read_lock();
	dev = dev_get_by_name_rcu(current->nsproxy->net_ns, name);
	rcu_read_unlock();
	return dev;
}

int nvtr_sock_bind_dev(struct socket *sock, const char *ifname)
{
	return sock_setsockopt(sock, SOL_SOCKET, SO_BINDTODEVICE,
			       KERNEL_SOCKPTR((char *)ifname), strlen(ifname));
}

int nvtr_sock_create_caller_ns(unsigned short af, struct socket **res)
{
	return sock_create_kern(current->nsproxy->net_ns, af, SOCK_STREAM,
				IPPROTO_TCP, res);
}
