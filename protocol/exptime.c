/* Client exptime rules (memcached's): relative up to 30 days, absolute beyond, negative = gone. */
#include "protocol/request.h"

uint32_t proto_exptime_to_abs(int64_t exptime, int64_t now)
{
    if (exptime == 0) {
        return 0;
    }
    if (exptime < 0) {
        return 1; /* any past time reads as expired; 1 keeps 0 free for "never" */
    }
    if (exptime <= PROTO_REALTIME_MAXDELTA) {
        int64_t abs_time = now + exptime;
        return abs_time > UINT32_MAX ? UINT32_MAX : (uint32_t)abs_time;
    }
    return exptime > UINT32_MAX ? UINT32_MAX : (uint32_t)exptime;
}
