/*
 * spdlog as a peer of the logging rows (bench/logloop.c drives it): in each
 * writer process an asynchronous logger, its own thread pool whose queue
 * holds the whole run (spdlog's default policy then never blocks the
 * call), and a basic file sink.  One file per process: spdlog's file sink
 * buffers with stdio and writes blocks, so two processes appending to one
 * file would tear each other's lines; a file each is what a multi-process
 * program has to do with it.  The backend thread runs where ipcx's drain
 * does (bh_log_backend_cpus).
 */
extern "C" {
#include "peer.h"
}

#include <spdlog/async.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <memory>

namespace {

struct slog {
	std::shared_ptr<spdlog::details::thread_pool> tp;
	std::shared_ptr<spdlog::async_logger> log;
};

int s_open(struct bh_ctx *c, void **w)
{
	char leaf[32], path[256];
	snprintf(leaf, sizeof(leaf), "spdlog-%d.log", c->side);
	bh_path(c->p, leaf, path, sizeof(path));
	uint64_t n = bh_log_count(c->p);
	const struct bh_params *p = c->p;
	int writers = std::strcmp(static_cast<const char *>(c->arg), "2") ? 1 : 2;
	try {
		auto s = std::make_unique<slog>();
		s->tp = std::make_shared<spdlog::details::thread_pool>(
			n + n / 10 + 1024, 1, [p, writers] { bh_log_backend_cpus(p, writers); });
		auto sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(path);
		s->log = std::make_shared<spdlog::async_logger>("bench", sink, s->tp,
								spdlog::async_overflow_policy::block);
		*w = s.release();
		return 0;
	} catch (const std::exception &e) {
		bh_note(c->res, BH_ERROR, "spdlog: %s", e.what());
		return -EIO;
	}
}

int s_log(void *w, const char *msg, size_t len)
{
	static_cast<slog *>(w)->log->info(spdlog::string_view_t(msg, len));
	return 0;
}

/* Flushed, and the thread pool joined: every record is in the file. */
int s_close(void *w)
{
	auto *s = static_cast<slog *>(w);
	s->log->flush();
	s->log.reset();
	s->tp.reset(); /* processes what is queued, then joins; the sink closes its file */
	delete s;
	return 0;
}

const struct bh_logops spdlog_lo = { s_open, s_log, s_close, nullptr, nullptr, nullptr, nullptr };

int one(struct bh_ctx *c, struct bh_hist *h, struct bh_result *r)
{
	return bh_log_loop(c, &spdlog_lo, 1, 1, h, r);
}

int two(struct bh_ctx *c, struct bh_hist *h, struct bh_result *r)
{
	return bh_log_loop(c, &spdlog_lo, 2, 1, h, r);
}

struct bh_ops make_row(const char *mode, int (*op)(struct bh_ctx *, struct bh_hist *,
						     struct bh_result *), const char *writers)
{
	struct bh_ops o = {};
	o.arg = writers;
	o.transport = "log";
	o.impl = "spdlog";
	o.mode = mode;
	o.shared_bytes = bh_log_shared_bytes;
	o.op = op;
	return o;
}

const struct bh_ops row1 = make_row("1 writer", one, "1");
const struct bh_ops row2 = make_row("2 writers", two, "2");

} // namespace

extern "C" const struct bh_ops *peer_ops(const char *transport)
{
	if (!std::strcmp(transport, "1"))
		return &row1;
	if (!std::strcmp(transport, "2"))
		return &row2;
	return nullptr;
}

/* spdlog has no fan-out rows. */
extern "C" const struct bh_fan_ops *peer_fan_ops(const char *)
{
	return nullptr;
}

extern "C" const char *peer_version(void)
{
	static char v[32];
	snprintf(v, sizeof(v), "spdlog %d.%d.%d", SPDLOG_VER_MAJOR, SPDLOG_VER_MINOR,
		 SPDLOG_VER_PATCH);
	return v;
}
