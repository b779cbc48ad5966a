/* The on-disk item record: a versioned little-endian header followed by the value bytes. */
#ifndef MCSTORE_STORAGE_RECORD_H
#define MCSTORE_STORAGE_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Layout (all little endian):
 *   0  u8   version (RECORD_VERSION)
 *   1  u8   meta bits: the meta protocol's per-item state (RECORD_META_*); records written
 *           before the meta commands existed have 0 here, which is exactly "none"
 *   2  u8   reserved[2], zero
 *   4  u32  client flags
 *   8  u32  exptime, absolute unix time, 0 = never   (the expiry index reads this field)
 *  12  u32  mtime, unix time of the last write      (flush_all with a delay)
 *  16  u64  cas unique
 *  24  ...  value
 */
#define RECORD_VERSION 1
#define RECORD_HEADER 24
#define RECORD_EXPTIME_OFFSET 8

/* Meta bits (the same values as store.h's STORE_META_*). */
#define RECORD_META_STALE 0x01          /* invalidated (md I, ms I): readers see X */
#define RECORD_META_WON 0x02            /* a reader got the win token W: the next see Z */
#define RECORD_META_KEY_BINARY 0x04     /* set with a base64 key: 'k' echoes it in base64 */
#define RECORD_META_KNOWN 0x07

struct record_header {
    uint32_t flags;
    uint32_t exptime;
    uint32_t mtime;
    uint64_t cas;
    uint8_t meta;               /* RECORD_META_* */
};

void record_encode_header(unsigned char *out, const struct record_header *h);

/* False when the bytes are too short or of an unknown version. */
bool record_decode_header(const unsigned char *in, size_t len, struct record_header *h);

uint32_t record_le32(const unsigned char *p);

/* flush_all's markers, kept in meta.db under "flush": items with a smaller cas are gone, and
 * items written before 'time' are gone once it is (about) reached. */
struct flush_marks {
    uint64_t cas;
    uint32_t time;
    bool scan_pending;          /* the sweeper has not yet deleted every flushed record */
};

#define FLUSH_MARKS_BYTES 13

void flush_marks_encode(unsigned char *out, const struct flush_marks *m);
bool flush_marks_decode(const unsigned char *in, size_t len, struct flush_marks *m);

/* True when an item is invisible at 'now': expired, or removed by flush_all. */
bool record_dead(const struct record_header *h, uint32_t now, const struct flush_marks *m);

#endif
