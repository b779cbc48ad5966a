/* Encoding and decoding of the item record header. */
#include "storage/record.h"

#include <string.h>

static void put_le32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

uint32_t record_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void record_encode_header(unsigned char *out, const struct record_header *h)
{
    out[0] = RECORD_VERSION;
    out[1] = h->meta;
    out[2] = out[3] = 0;
    put_le32(out + 4, h->flags);
    put_le32(out + RECORD_EXPTIME_OFFSET, h->exptime);
    put_le32(out + 12, h->mtime);
    put_le32(out + 16, (uint32_t)h->cas);
    put_le32(out + 20, (uint32_t)(h->cas >> 32));
}

void flush_marks_encode(unsigned char *out, const struct flush_marks *m)
{
    put_le32(out, (uint32_t)m->cas);
    put_le32(out + 4, (uint32_t)(m->cas >> 32));
    put_le32(out + 8, m->time);
    out[12] = m->scan_pending ? 1 : 0;
}

bool flush_marks_decode(const unsigned char *in, size_t len, struct flush_marks *m)
{
    if (len < FLUSH_MARKS_BYTES) {
        return false;
    }
    m->cas = (uint64_t)record_le32(in) | (uint64_t)record_le32(in + 4) << 32;
    m->time = record_le32(in + 8);
    m->scan_pending = in[12] != 0;
    return true;
}

bool record_dead(const struct record_header *h, uint32_t now, const struct flush_marks *m)
{
    if (h->exptime != 0 && h->exptime <= now) {
        return true;
    }
    if (m->cas != 0 && h->cas < m->cas) {
        return true;
    }
    /* memcached makes a delayed flush bite one second early (oldest_live = time - 1) */
    return m->time != 0 && now + 1 >= m->time && h->mtime < m->time;
}

bool record_decode_header(const unsigned char *in, size_t len, struct record_header *h)
{
    if (len < RECORD_HEADER || in[0] != RECORD_VERSION) {
        return false;
    }
    /* bits a newer version may define are dropped, not misread */
    h->meta = in[1] & RECORD_META_KNOWN;
    h->flags = record_le32(in + 4);
    h->exptime = record_le32(in + RECORD_EXPTIME_OFFSET);
    h->mtime = record_le32(in + 12);
    h->cas = (uint64_t)record_le32(in + 16) | (uint64_t)record_le32(in + 20) << 32;
    return true;
}
