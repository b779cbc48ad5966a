/* The numbers a run produces: summed over threads, printed as a table, JSON or progress. */
#include "tools/bench/report.h"

#include <inttypes.h>
#include <string.h>

#include "config.h"

static void add_counts(struct bench_counts *a, const struct bench_counts *b)
{
    a->gets += b->gets;
    a->sets += b->sets;
    a->hits += b->hits;
    a->misses += b->misses;
    a->errors += b->errors;
    for (int i = 0; i < CLIENT_OUTCOMES; i++) {
        a->by_outcome[i] += b->by_outcome[i];
    }
    a->unexpected += b->unexpected;
    a->lost += b->lost;
    a->timeouts += b->timeouts;
    a->bad_replies += b->bad_replies;
    a->retries += b->retries;
    a->reconnects += b->reconnects;
}

void bench_result_empty(struct bench_result *r, enum gen_mode mode)
{
    memset(r, 0, sizeof(*r));
    r->ran = true;
    r->mode = mode;
    hist_init(&r->lat);
    hist_init(&r->lat_get);
    hist_init(&r->lat_set);
    hist_init(&r->actions);
}

void bench_result_collect(struct bench_result *r, const struct bench_run *run,
                          struct bench_worker *ws, unsigned n)
{
    uint64_t start = UINT64_MAX, end = 0, one_start = UINT64_MAX, one_end = 0;

    bench_result_empty(r, run->mode);
    for (unsigned i = 0; i < n; i++) {
        struct bench_worker *w = &ws[i];
        add_counts(&r->cnt, &w->cnt);
        hist_merge(&r->lat, &w->lat);
        hist_merge(&r->lat_get, &w->lat_get);
        hist_merge(&r->lat_set, &w->lat_set);
        hist_merge(&r->actions, &w->actions);
        r->actions_done += w->gen.actions_done;
        r->action_errors += w->gen.action_errors;
        r->action_writes += w->gen.action_writes;
        if (w->start_ns != 0 && w->start_ns < start) {
            start = w->start_ns;
        }
        if (w->end_ns > end) {
            end = w->end_ns;
        }
        if (w->gen.one_start_ns != 0 && w->gen.one_start_ns < one_start) {
            one_start = w->gen.one_start_ns;
        }
        if (w->gen.one_end_ns > one_end) {
            one_end = w->gen.one_end_ns;
        }
    }
    r->seconds = end > start ? (double)(end - start) * 1e-9 : 0.0;
    if (run->mode == GEN_FANOUT_ONE) {
        r->one_user = fanout_top_user(&run->plan);
        r->one_followers = fanout_followers(&run->plan, r->one_user);
        r->one_ns = one_end > one_start ? one_end - one_start : 0;
    }
}

void bench_progress_read(struct bench_worker *ws, unsigned n, struct bench_progress *p)
{
    memset(p, 0, sizeof(*p));
    for (unsigned i = 0; i < n; i++) {
        p->ops += atomic_load_explicit(&ws[i].p_ops, memory_order_relaxed);
        p->sets += atomic_load_explicit(&ws[i].p_sets, memory_order_relaxed);
        p->gets += atomic_load_explicit(&ws[i].p_gets, memory_order_relaxed);
        p->errors += atomic_load_explicit(&ws[i].p_errors, memory_order_relaxed);
        p->actions += atomic_load_explicit(&ws[i].p_actions, memory_order_relaxed);
    }
}

static double per_sec(uint64_t n, double s)
{
    return s > 0.0 ? (double)n / s : 0.0;
}

void bench_progress_print(FILE *f, const struct bench_run *run, double t,
                          const struct bench_progress *now, const struct bench_progress *last,
                          double dt)
{
    switch (run->mode) {
    case GEN_PREFILL:
    case GEN_FANOUT_PREFILL:
        fprintf(f, "[%5.1fs] prefill: %" PRIu64 " sets, %.0f sets/s, %" PRIu64 " errors\n", t,
                now->sets, per_sec(now->sets - last->sets, dt), now->errors);
        break;
    case GEN_FANOUT:
    case GEN_FANOUT_ONE:
        fprintf(f, "[%5.1fs] %" PRIu64 " actions, %.1f actions/s, %.0f writes/s, %" PRIu64
                " errors\n", t, now->actions, per_sec(now->actions - last->actions, dt),
                per_sec(now->sets - last->sets, dt), now->errors);
        break;
    default:
        fprintf(f, "[%5.1fs] %.0f ops/s (%.0f sets/s, %.0f gets/s), %" PRIu64 " ops, %" PRIu64
                " errors\n", t, per_sec(now->ops - last->ops, dt),
                per_sec(now->sets - last->sets, dt), per_sec(now->gets - last->gets, dt),
                now->ops, now->errors);
        break;
    }
    fflush(f);
}

static double us(uint64_t ns)
{
    return (double)ns / 1000.0;
}

static double ms(uint64_t ns)
{
    return (double)ns / 1e6;
}

static void lat_header(FILE *f, const char *title)
{
    fprintf(f, "%s\n%-6s %10s %10s %10s %10s %10s %10s\n", title, "", "p50", "p90", "p99",
            "p99.9", "max", "mean");
}

static void lat_row(FILE *f, const char *name, const struct hist *h)
{
    if (h->count == 0) {
        fprintf(f, "%-6s %10s\n", name, "-");
        return;
    }
    fprintf(f, "%-6s %10.1f %10.1f %10.1f %10.1f %10.1f %10.1f\n", name,
            us(hist_percentile(h, 50)), us(hist_percentile(h, 90)), us(hist_percentile(h, 99)),
            us(hist_percentile(h, 99.9)), us(h->max), hist_mean(h) / 1000.0);
}

static void servers_line(FILE *f, const struct bench_opts *o)
{
    for (size_t i = 0; i < o->nservers; i++) {
        fprintf(f, "%s%s:%u", i ? ", " : "", o->servers[i].host, (unsigned)o->servers[i].port);
        if (o->servers[i].weight != 1) {
            fprintf(f, ":%u", (unsigned)o->servers[i].weight);
        }
    }
}

static void error_detail(FILE *f, const struct bench_counts *c)
{
    const char *sep = "";

    fprintf(f, " (");
    for (int i = CLIENT_NOT_STORED; i < CLIENT_OUTCOMES; i++) {
        if (c->by_outcome[i] == 0) {
            continue;
        }
        fprintf(f, "%s%s %" PRIu64, sep, client_outcome_name((enum client_outcome)i),
                c->by_outcome[i]);
        sep = ", ";
    }
    if (c->lost) {
        fprintf(f, "%slost %" PRIu64, sep, c->lost);
        sep = ", ";
    }
    if (c->timeouts) {
        fprintf(f, "%stimeouts %" PRIu64, sep, c->timeouts);
        sep = ", ";
    }
    if (c->bad_replies) {
        fprintf(f, "%sbad replies %" PRIu64, sep, c->bad_replies);
    }
    fprintf(f, ")");
}

static void value_desc(FILE *f, const struct bench_opts *o)
{
    if (o->value_min == o->value_max) {
        fprintf(f, "%u B", (unsigned)o->value_min);
    } else {
        fprintf(f, "%u-%u B", (unsigned)o->value_min, (unsigned)o->value_max);
    }
}

void bench_report_table(FILE *f, const struct bench_run *run, const struct bench_result *prefill,
                        const struct bench_result *r)
{
    const struct bench_opts *o = run->o;
    const struct bench_counts *c = &r->cnt;

    fprintf(f, "mcstore-bench %s: ", PACKAGE_VERSION);
    servers_line(f, o);
    fprintf(f, "; %s protocol, %u threads x %u connections%s, pipeline %u\n",
            bench_protocol_name(o->protocol), o->threads, o->connections,
            o->nservers > 1 ? " per server" : "", o->pipeline);
    if (o->fanout) {
        fprintf(f, "fan-out: %s, %" PRIu64 " users, most followers %u, mean %.1f "
                "(power law exponent %.3f), seed %" PRIu64 "\n",
                o->fanout_op == BENCH_FANOUT_APPEND ? "append \"<action> \" to inbox:<follower>"
                                                    : "set inbox:<follower>:<action>",
                run->plan.users, run->plan.max_followers, run->plan.mean, run->plan.alpha,
                o->seed);
    } else {
        fprintf(f, "load: ratio %u:%u over %" PRIu64 " keys (%s), values ", o->ratio_set,
                o->ratio_get, o->keys, bench_pattern_name(o->pattern));
        value_desc(f, o);
        fprintf(f, ", seed %" PRIu64 "\n", o->seed);
    }
    if (prefill != NULL && prefill->ran) {
        fprintf(f, "prefill: %" PRIu64 " sets in %.2f s (%.0f sets/s), %" PRIu64 " errors\n",
                prefill->cnt.sets, prefill->seconds, per_sec(prefill->cnt.sets, prefill->seconds),
                prefill->cnt.errors);
    }
    if (o->prefill_only) {
        return;
    }
    fprintf(f, "\n");
    if (r->mode == GEN_FANOUT_ONE) {
        fprintf(f, "max-user action: user %" PRIu64 ", %u followers: every write answered in "
                "%.1f ms (%.0f writes/s), %" PRIu64 " errors\n", r->one_user, r->one_followers,
                ms(r->one_ns), per_sec(c->sets, (double)r->one_ns * 1e-9), c->errors);
        if (c->retries) {
            fprintf(f, "retries: %" PRIu64 " (NOT_STORED answered by append <-> add)\n",
                    c->retries);
        }
        lat_header(f, "\nlatency of each write (us)");
        lat_row(f, "write", &r->lat_set);
        return;
    }
    fprintf(f, "%-8s %12s %12s\n", "", "count", "per sec");
    fprintf(f, "%-8s %12" PRIu64 " %12.1f\n", "ops", c->gets + c->sets,
            per_sec(c->gets + c->sets, r->seconds));
    fprintf(f, "%-8s %12" PRIu64 " %12.1f\n", "sets", c->sets, per_sec(c->sets, r->seconds));
    fprintf(f, "%-8s %12" PRIu64 " %12.1f\n", "gets", c->gets, per_sec(c->gets, r->seconds));
    fprintf(f, "%-8s %12" PRIu64 "\n", "hits", c->hits);
    fprintf(f, "%-8s %12" PRIu64 "\n", "misses", c->misses);
    fprintf(f, "%-8s %12" PRIu64, "errors", c->errors);
    if (c->errors) {
        error_detail(f, c);
    }
    fprintf(f, "\n");
    if (c->retries) {
        fprintf(f, "%-8s %12" PRIu64 " (NOT_STORED answered by append <-> add)\n", "retries",
                c->retries);
    }
    if (r->mode == GEN_FANOUT) {
        fprintf(f, "%-8s %12" PRIu64 " %12.1f   (%" PRIu64 " with errors)\n", "actions",
                r->actions_done, per_sec(r->actions_done, r->seconds), r->action_errors);
        fprintf(f, "%-8s %12" PRIu64 " %12.1f\n", "writes", c->sets, per_sec(c->sets, r->seconds));
    }
    fprintf(f, "duration %10.2f s\n\n", r->seconds);
    lat_header(f, "latency (us)");
    lat_row(f, "all", &r->lat);
    if (r->mode == GEN_RUN) {
        lat_row(f, "set", &r->lat_set);
        lat_row(f, "get", &r->lat_get);
    }
    if (r->mode == GEN_FANOUT && r->actions.count > 0) {
        const struct hist *h = &r->actions;
        lat_header(f, "\nfan-out: time for all writes of one action to be answered (ms)");
        fprintf(f, "%-6s %10.2f %10.2f %10.2f %10.2f %10.2f %10.2f\n", "action",
                ms(hist_percentile(h, 50)), ms(hist_percentile(h, 90)),
                ms(hist_percentile(h, 99)), ms(hist_percentile(h, 99.9)), ms(h->max),
                hist_mean(h) / 1e6);
    }
}

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            fprintf(f, "\\%c", ch);
        } else if (ch < 0x20) {
            fprintf(f, "\\u%04x", ch);
        } else {
            fputc(ch, f);
        }
    }
    fputc('"', f);
}

static void json_lat(FILE *f, const char *name, const struct hist *h, bool in_ms)
{
    double k = in_ms ? 1e6 : 1e3;
    fprintf(f, "\"%s\":{\"count\":%" PRIu64 ",\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,"
            "\"p99_9\":%.3f,\"max\":%.3f,\"mean\":%.3f}", name, h->count,
            (double)hist_percentile(h, 50) / k, (double)hist_percentile(h, 90) / k,
            (double)hist_percentile(h, 99) / k, (double)hist_percentile(h, 99.9) / k,
            (double)h->max / k, hist_mean(h) / k);
}

static void json_counts(FILE *f, const struct bench_counts *c, double seconds)
{
    fprintf(f, "\"seconds\":%.6f,\"ops\":%" PRIu64 ",\"ops_per_sec\":%.1f,\"sets\":%" PRIu64
            ",\"sets_per_sec\":%.1f,\"gets\":%" PRIu64 ",\"gets_per_sec\":%.1f,\"hits\":%" PRIu64
            ",\"misses\":%" PRIu64 ",\"errors\":%" PRIu64 ",\"retries\":%" PRIu64
            ",\"reconnects\":%" PRIu64 ",\"error_detail\":{", seconds, c->gets + c->sets,
            per_sec(c->gets + c->sets, seconds), c->sets, per_sec(c->sets, seconds), c->gets,
            per_sec(c->gets, seconds), c->hits, c->misses, c->errors, c->retries, c->reconnects);
    for (int i = CLIENT_NOT_STORED; i < CLIENT_OUTCOMES; i++) {
        fprintf(f, "\"%s\":%" PRIu64 ",", client_outcome_name((enum client_outcome)i),
                c->by_outcome[i]);
    }
    fprintf(f, "\"lost\":%" PRIu64 ",\"timeouts\":%" PRIu64 ",\"bad_replies\":%" PRIu64 "}",
            c->lost, c->timeouts, c->bad_replies);
}

void bench_report_json(FILE *f, const struct bench_run *run, const struct bench_result *prefill,
                       const struct bench_result *r)
{
    const struct bench_opts *o = run->o;

    fprintf(f, "{\"tool\":\"mcstore-bench\",\"version\":\"%s\",\"config\":{\"servers\":[",
            PACKAGE_VERSION);
    for (size_t i = 0; i < o->nservers; i++) {
        char s[RING_HOST_MAX + 32];
        snprintf(s, sizeof(s), "%s:%u", o->servers[i].host, (unsigned)o->servers[i].port);
        if (i) {
            fputc(',', f);
        }
        json_str(f, s);
    }
    fprintf(f, "],\"protocol\":\"%s\",\"threads\":%u,\"connections\":%u,\"pipeline\":%u,"
            "\"ratio\":\"%u:%u\",\"keys\":%" PRIu64 ",\"key_pattern\":\"%s\",\"zipf_s\":%g,"
            "\"key_prefix\":", bench_protocol_name(o->protocol), o->threads, o->connections,
            o->pipeline, o->ratio_set, o->ratio_get, o->keys, bench_pattern_name(o->pattern),
            o->zipf_s);
    json_str(f, o->key_prefix);
    fprintf(f, ",\"value_min\":%u,\"value_max\":%u,\"duration\":%g,\"requests\":%" PRIu64
            ",\"rate\":%g,\"prefill\":%s,\"seed\":%" PRIu64 ",\"fanout\":%s",
            (unsigned)o->value_min, (unsigned)o->value_max, o->duration, o->requests, o->rate,
            o->prefill ? "true" : "false", o->seed, o->fanout ? "true" : "false");
    if (o->fanout) {
        fprintf(f, ",\"fanout_op\":\"%s\",\"fanout_users\":%" PRIu64
                ",\"fanout_max_followers\":%u,\"fanout_mean\":%g,\"fanout_plan_mean\":%.3f,"
                "\"fanout_alpha\":%.6f,\"fanout_max_user\":%s",
                bench_fanout_op_name(o->fanout_op), run->plan.users, run->plan.max_followers,
                o->fanout_mean, run->plan.mean, run->plan.alpha,
                o->fanout_max_user ? "true" : "false");
    }
    fprintf(f, "},\"prefill\":");
    if (prefill != NULL && prefill->ran) {
        fputc('{', f);
        json_counts(f, &prefill->cnt, prefill->seconds);
        fputc('}', f);
    } else {
        fprintf(f, "null");
    }
    fputc(',', f);
    json_counts(f, &r->cnt, r->seconds);
    fprintf(f, ",\"latency_us\":{");
    json_lat(f, "all", &r->lat, false);
    fputc(',', f);
    json_lat(f, "set", &r->lat_set, false);
    fputc(',', f);
    json_lat(f, "get", &r->lat_get, false);
    fputc('}', f);
    if (r->mode == GEN_FANOUT) {
        fprintf(f, ",\"fanout\":{\"actions\":%" PRIu64 ",\"actions_per_sec\":%.2f,"
                "\"action_errors\":%" PRIu64 ",\"writes\":%" PRIu64 ",\"writes_per_sec\":%.1f,"
                "\"inbox_writes\":%" PRIu64 ",", r->actions_done,
                per_sec(r->actions_done, r->seconds), r->action_errors, r->cnt.sets,
                per_sec(r->cnt.sets, r->seconds), r->action_writes);
        json_lat(f, "completion_ms", &r->actions, true);
        fputc('}', f);
    }
    if (r->mode == GEN_FANOUT_ONE) {
        fprintf(f, ",\"max_user\":{\"user\":%" PRIu64 ",\"followers\":%u,\"writes\":%" PRIu64
                ",\"completion_ms\":%.3f,\"writes_per_sec\":%.1f,\"errors\":%" PRIu64 "}",
                r->one_user, r->one_followers, r->cnt.sets, ms(r->one_ns),
                per_sec(r->cnt.sets, (double)r->one_ns * 1e-9), r->cnt.errors);
    }
    fprintf(f, "}\n");
}
