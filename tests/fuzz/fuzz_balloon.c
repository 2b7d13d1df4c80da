/*
 * libFuzzer target: the fuzzer plays a hostile virtio-balloon device against the driver
 * (src/drivers/virtio_balloon.c), through the whole-device fake of the host tests.
 *
 * The first byte picks the features the device offers. After init, every op byte makes the
 * device set any target (config num_pages, with or without the config interrupt), return
 * the stats buffer with any used length, write garbage over the driver's DMA memory or ask
 * for a reset; or makes the kernel act: poll, deflate for OOM, report a free run. Whenever
 * the driver waits for an inflate, deflate or report request, the next input byte says what
 * the device does with it: complete it (with any used length), complete an id not in flight,
 * or keep it (the driver's timeout is short).
 *
 * A fake kernel allocator referees the pages: the balloon may give back only pages it took,
 * each once; at the end vio_balloon_fini gives back every page it still holds, and leaves no
 * DMA or private memory allocated. The floor (opts.free_pages) must hold after every op.
 * ASan, UBSan and VIO_DEBUG's VIO_ASSERTs catch the rest.
 *
 *   make build/fuzz/fuzz_balloon && build/fuzz/fuzz_balloon -max_total_time=60
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <vio/balloon.h>
#include <vio/err.h>

#include "fake_env.h"
#include "fuzz_input.h"

#define POOL	 1024
#define PFN_BASE 0x40000
#define FLOOR	 64
#define TIMEOUT_NS 200000

struct state {
	struct fake_env *e;
	struct vio_balloon b;
	const uint8_t *p, *end;
	struct fake_req req;
	/* The kernel: a stack of free pages, and which pages the balloon has. */
	uint32_t free_stack[POOL];
	uint32_t nfree;
	uint8_t in_balloon[POOL];
	uint32_t in_use;
	bool floor_on;
	_Alignas(4096) uint8_t run[4096 * 2];
};

FUZZ_INPUT_READERS(struct state)

static int k_take(struct vio_balloon *b, uint32_t *pfn, void *arg)
{
	struct state *s = arg;
	(void)b;

	if (s->nfree == 0)
		return VIO_ENOMEM;
	*pfn = s->free_stack[--s->nfree];
	check(!s->in_balloon[*pfn - PFN_BASE]);
	s->in_balloon[*pfn - PFN_BASE] = 1;
	s->in_use++;
	return 0;
}

static void k_give(struct vio_balloon *b, uint32_t pfn, void *arg)
{
	struct state *s = arg;
	(void)b;

	/* Only a page the balloon took, and only once. */
	check(pfn >= PFN_BASE && pfn < PFN_BASE + POOL && s->in_balloon[pfn - PFN_BASE]);
	s->in_balloon[pfn - PFN_BASE] = 0;
	s->in_use--;
	s->free_stack[s->nfree++] = pfn;
}

static unsigned k_stats(struct vio_balloon *b, struct vio_balloon_stat_val *out, unsigned max,
			void *arg)
{
	struct state *s = arg;
	(void)b;
	unsigned n = byte(s) % (max + 1);

	for (unsigned i = 0; i < n; i++)
		out[i] = (struct vio_balloon_stat_val){(uint16_t)i, s->nfree * 4096ull};
	return n;
}

static uint64_t k_free_pages(struct vio_balloon *b, void *arg)
{
	struct state *s = arg;
	(void)b;
	return s->nfree;
}

/* The device's answer to whatever the driver is waiting for, on queue q. */
static void answer(struct state *s, int q)
{
	struct fake_vring *fv = &s->e->ring[q];

	if (!fake_vring_avail_pending(fv))
		return;
	uint8_t how = s->p < s->end ? byte(s) : 0;
	if (how >= 0xf0) {
		s->e->fp.now += 1000000; /* keeps it: time passes */
		return;
	}
	if (!fake_vring_pop(fv, &s->req))
		return;
	if (how == 0xe0)
		fake_vring_complete(fv, (s->req.head + 1u) % fv->size, 0); /* not in flight */
	else
		fake_vring_complete(fv, s->req.head, how & 1 ? word(s) : 0);
}

static void model(struct fake_env *e)
{
	struct state *s = e->model_arg;

	if (e->nrings == 0)
		return;
	int report = s->b.reporting ? 2 + s->b.stats_vq : -1;
	if (!fake_vring_avail_pending(&e->ring[VIRTIO_BALLOON_VQ_INFLATE]) &&
	    !fake_vring_avail_pending(&e->ring[VIRTIO_BALLOON_VQ_DEFLATE]) &&
	    (report < 0 || !fake_vring_avail_pending(&e->ring[report]))) {
		e->fp.now += TIMEOUT_NS / FUZZ_LOOKS_PER_TIMEOUT; /* nothing to do: time flies */
		return;
	}
	answer(s, VIRTIO_BALLOON_VQ_INFLATE);
	answer(s, VIRTIO_BALLOON_VQ_DEFLATE);
	if (report >= 0)
		answer(s, report);
}

static void op_stats(struct state *s)
{
	int q = 2;
	struct fake_vring *fv = &s->e->ring[q];

	if (!s->b.stats_vq || !fake_vring_pop(fv, &s->req))
		return;
	fake_vring_complete(fv, s->req.head, byte(s) & 1 ? word(s) : 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct state st;
	struct state *s = &st;

	if (size < 1)
		return 0;
	memset(s, 0, sizeof(*s));
	s->p = data;
	s->end = data + size;
	for (uint32_t i = 0; i < POOL; i++)
		s->free_stack[s->nfree++] = PFN_BASE + i;

	uint8_t cfg = byte(s);
	uint64_t features = 0;
	for (unsigned bit = 0; bit < 6; bit++)
		if (cfg & (1u << bit))
			features |= 1ull << bit;
	struct virtio_balloon_config bc = {.num_pages = word(s)};
	s->e = fake_env_new(VIRTIO_ID_BALLOON, features, &bc, sizeof(bc), 5, 8);
	if (cfg & 0x40)
		fake_env_no_irqs(s->e);
	s->floor_on = cfg & 0x80;
	struct vio_balloon_opts opts = {.page_take = k_take,
					.page_give = k_give,
					.guest_stats = byte(s) & 1 ? k_stats : NULL,
					.arg = s,
					.timeout_ns = TIMEOUT_NS,
					.free_pages = s->floor_on ? k_free_pages : NULL,
					.floor_pages = FLOOR};
	s->e->model = model;
	s->e->model_arg = s;
	if (vio_balloon_init(&s->b, &s->e->dev, &opts) != 0) {
		check(s->e->fp.dma_live_allocs == 0 && s->e->fp.priv_live_allocs == 0);
		s->e->model = NULL;
		fake_env_free(s->e);
		return 0;
	}
	fake_env_rings(s->e);

	while (s->p < s->end) {
		uint32_t v;
		int r;

		switch (byte(s) % 10) {
		case 0:
		case 1:
		case 2:
			r = vio_balloon_poll(&s->b);
			check(r == 0 || r == 1 || r == VIO_ETIMEDOUT || r == VIO_EIO ||
			      r == VIO_ENEEDRESET);
			break;
		case 3:
			v = byte(s) & 1 ? word(s) : byte(s) * 8u;
			fake_env_set_config(s->e, offsetof(struct virtio_balloon_config, num_pages),
					    &v, sizeof(v));
			if (byte(s) & 1)
				fake_env_config_irq(s->e);
			break;
		case 4:
			op_stats(s);
			break;
		case 5:
			r = vio_balloon_deflate_for_oom(&s->b, byte(s));
			check(r >= 0 || r == VIO_EAGAIN || r == VIO_ENOTSUP || r == VIO_ETIMEDOUT ||
			      r == VIO_EIO || r == VIO_ENEEDRESET);
			break;
		case 6:
			fake_env_scribble(s->e, byte(s));
			break;
		case 7:
			if (byte(s) == 0x5a)
				s->e->vd.status |= VIRTIO_CONFIG_S_NEEDS_RESET;
			break;
		case 8:
			/* Too small a run: refused before the device sees it. */
			r = vio_balloon_report_free(&s->b, s->run, 2);
			check(r == VIO_EINVAL || r == VIO_ENOTSUP);
			break;
		case 9:
			v = word(s);
			fake_env_set_config(s->e, offsetof(struct virtio_balloon_config, actual),
					    &v, sizeof(v));
			break;
		}
		/* What the balloon says it holds is what the kernel lent it. */
		check(vio_balloon_actual(&s->b) == s->in_use);
		if (s->floor_on)
			check(s->nfree >= FLOOR || s->in_use == 0);
	}
	s->e->model = NULL;
	check(vio_balloon_fini(&s->b) == 0);
	check(s->in_use == 0);
	check(s->e->fp.dma_live_allocs == 0);
	check(s->e->fp.priv_live_allocs == 0);
	fake_env_free(s->e);
	return 0;
}
