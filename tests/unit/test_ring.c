/* Unit tests of the ring library (tools/ring): hash and owner vectors from the real clients. */

/*
 * Where the expected values come from (never from our own code):
 * - Owners under libmemcached 1.1.4's ketama: pylibmc 1.6.3 (Debian 12),
 *   Client(servers, behaviors).hash(key) answers the index of the server a key goes to.
 * - Hash values and the twemproxy owners: tests/unit/ring_vectors.py, which gets them from
 *   nutcracker 0.5.0 itself (Debian's /usr/sbin/nutcracker, through fake backends) and
 *   from libmemcached's libhashkit.so.2 (the two agree on every function both have).
 * tests/integration/test_ring.py checks 100,000 keys against real servers behind pylibmc
 * and nutcracker.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "tools/ring/ring.h"

#define NKEYS 2000

/* --- hash functions --- */

static const char *const hash_keys[] = {
    "a", "ab", "abc", "key:0", "123456789", "inbox:123:456",
    "a-longer-key:with-several-blocks:01234567",
    "caf\xc3\xa9:\xc3\xbc\xc3\x9f",     /* UTF-8: bytes >= 0x80 are sign-extended by some */
    "\xff\xfe\xfd",
    "x\x80\x81\x82\x83\x84\x85",
};
#define NHASH_KEYS (sizeof(hash_keys) / sizeof(hash_keys[0]))

static const struct {
    enum ring_hash hash;
    uint32_t want[NHASH_KEYS];
} hash_vectors[] = {
    {RING_HASH_ONE_AT_A_TIME, {0xca2e9442, 0x45e61e58, 0xed131f5b, 0xc0d4cec1, 0xc66b58c5,
                               0x96b2010a, 0x56d47933, 0x309b5b95, 0x475549b8, 0x2810edb7}},
    {RING_HASH_MD5, {0xb975c10c, 0x43f47e18, 0x98500190, 0x82ab86df, 0x94e7f925, 0x53b8666b,
                     0x7635c76d, 0xacdbdc18, 0xc24e6789, 0x05b3d9b7}},
    {RING_HASH_CRC16, {0x00007c87, 0x007c74ff, 0x7c749dd6, 0x70128a20, 0x869031c3, 0x55dfca07,
                       0xb54c24fc, 0x7f763b07, 0x1e0dc11f, 0x120b0f46}},
    {RING_HASH_CRC32, {0x000068b7, 0x00001e83, 0x00003524, 0x00007c68, 0x00004bf4, 0x0000400b,
                       0x0000693b, 0x0000046a, 0x000008ea, 0x000036c3}},
    {RING_HASH_CRC32A, {0xe8b7be43, 0x9e83486d, 0x352441c2, 0x7c680b7a, 0xcbf43926, 0x400bbfee,
                        0x693bce4f, 0x846ac20d, 0x08eaaf6d, 0xb6c33d41}},
    {RING_HASH_FNV1_64, {0x8601b7be, 0xb4eb37b8, 0x6bafadcb, 0xfdc93304, 0x2bf916d6, 0xeda15136,
                         0x91c6aa2c, 0x0f6e5cf2, 0x93edf087, 0xcb5e668a}},
    {RING_HASH_FNV1A_64, {0x8601ec8c, 0xb545986a, 0x0541574b, 0x962f5916, 0x23c6cdfc,
                          0x3edb451c, 0xa4a51446, 0xe6fcb3a0, 0x8f0e92d7, 0x957c10c8}},
    {RING_HASH_FNV1_32, {0x050c5d7e, 0x70772d38, 0x439c2f4b, 0x8964f7a4, 0x24148816, 0xa2f2fd36,
                         0xc6a1250c, 0x19bf6852, 0x914c9107, 0x8b96e40a}},
    {RING_HASH_FNV1A_32, {0xe40c292c, 0x4d2505ca, 0x1a47e90b, 0x57140e16, 0xbb86b11c,
                          0x8d285efc, 0xbc31f886, 0x5525eee0, 0xbf6d4517, 0x48c77228}},
    {RING_HASH_HSIEH, {0x93642e87, 0x5b8c0ec3, 0xe5186b3a, 0xc3c83853, 0xe4fc1670, 0x825b91d8,
                       0x655d57b8, 0xa7e7c499, 0xd989515e, 0x197763d3}},
    {RING_HASH_MURMUR, {0x4b41757c, 0xe3b54dfb, 0x7b0cc428, 0x70f6b624, 0xb7760690, 0x743a9aea,
                        0xec7036f5, 0x90b449d7, 0xc2e4b7ff, 0xf841339f}},
    {RING_HASH_JENKINS, {0xe0a38690, 0xc1b5695b, 0x8f415600, 0x0dd56618, 0x19777af6,
                         0x6ed7fd0e, 0xc46203e2, 0x1e3da6e7, 0x222bd93e, 0x3d352b02}},
};

static void test_hash_vectors(void **state)
{
    (void)state;
    int bad = 0;

    for (size_t h = 0; h < sizeof(hash_vectors) / sizeof(hash_vectors[0]); h++) {
        for (size_t k = 0; k < NHASH_KEYS; k++) {
            uint32_t got = ring_hash_key(hash_vectors[h].hash, hash_keys[k],
                                         strlen(hash_keys[k]));
            if (got != hash_vectors[h].want[k]) {
                printf("# FAIL %s of key %zu: 0x%08x, want 0x%08x\n",
                       ring_hash_name(hash_vectors[h].hash), k, got, hash_vectors[h].want[k]);
                bad++;
            }
        }
    }
    assert_int_equal(bad, 0);
}

static void test_hash_of_empty_key(void **state)
{
    (void)state;
    /* libhashkit.so.2 and zlib on "" */
    assert_int_equal(ring_hash_key(RING_HASH_ONE_AT_A_TIME, "", 0), 0);
    assert_int_equal(ring_hash_key(RING_HASH_MD5, "", 0), 0xd98c1dd4u);
    assert_int_equal(ring_hash_key(RING_HASH_CRC32, "", 0), 0);
    assert_int_equal(ring_hash_key(RING_HASH_CRC32A, "", 0), 0);
    assert_int_equal(ring_hash_key(RING_HASH_FNV1_64, "", 0), 0x84222325u);
    assert_int_equal(ring_hash_key(RING_HASH_FNV1A_64, "", 0), 0x84222325u);
    assert_int_equal(ring_hash_key(RING_HASH_FNV1_32, "", 0), 0x811c9dc5u);
    assert_int_equal(ring_hash_key(RING_HASH_FNV1A_32, "", 0), 0x811c9dc5u);
    assert_int_equal(ring_hash_key(RING_HASH_MURMUR, "", 0), 0);
    assert_int_equal(ring_hash_key(RING_HASH_JENKINS, "", 0), 0xdeadbefcu);
}

static void test_hash_names(void **state)
{
    (void)state;
    const char *names[] = {"one_at_a_time", "md5", "crc16", "crc32", "crc32a", "fnv1_64",
                           "fnv1a_64", "fnv1_32", "fnv1a_32", "hsieh", "murmur", "jenkins"};
    enum ring_hash h;

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        assert_int_equal(ring_hash_parse(names[i], &h), 0);
        assert_string_equal(ring_hash_name(h), names[i]);
    }
    assert_int_equal(ring_hash_parse("crc", &h), 0);
    assert_int_equal(h, RING_HASH_CRC32);
    assert_int_equal(ring_hash_parse("default", &h), 0);
    assert_int_equal(h, RING_HASH_DEFAULT);
    assert_int_equal(ring_hash_parse("murmur3", &h), -1);
    assert_int_equal(ring_hash_parse("MD5", &h), -1);
    assert_int_equal(ring_default_hash(RING_LIBMEMCACHED_KETAMA), RING_HASH_ONE_AT_A_TIME);
    assert_int_equal(ring_default_hash(RING_LIBMEMCACHED_KETAMA_WEIGHTED), RING_HASH_MD5);
    assert_int_equal(ring_default_hash(RING_TWEMPROXY_KETAMA), RING_HASH_FNV1A_64);
}

/* --- owners --- */

/* pylibmc {"ketama_weighted": True}: the owner of "key:0" .. "key:1999", one digit each, for
 * 127.0.0.1:11211 (the default port: ring strings "127.0.0.1-N"), 127.0.0.1:11212 and
 * 127.0.0.1:11213, weights 1 */
static const char owners_equal[] =
    "100001220100020100101210202000002101001211221100222112122100210100200211200111120112100002"
    "000021222200111211020112022220120121210201111101112201101202222121120011212220222002222011"
    "211222212210010002210120010002222121220100210101112000112222101021102212110020221111220021"
    "110202110221222121012201012201222001202210110101012000220001100110220122120201201022120002"
    "121021021220000021200201002001212001002010110212020011212210000001222000002110010002120101"
    "010101212220111200110112202002121001020210121101201102212122202012101012011201102100221011"
    "121020011222201221020022222210111201211202112222001020110101111220001012022212122012210001"
    "012011010112120211202022221202220220102211100111202020112210020200100212210202122012102200"
    "210020121000122021021102221210002000000102022121222020100000110022202111220022021120001100"
    "111221200101102022021122210101210111202020221211010200200211001112220012021002001110000110"
    "122120112220002102122220212011100102101122022002001221221200001221110122201122012222122012"
    "012221002212121101210121002012201112112202212121020121210222101111202002202012022212120202"
    "022221221102110211002110021220002212112211212112220020011120001111020200200022112220112121"
    "100212200000102211201212010012001200122121221200102020111220210000100212102111021002111211"
    "120201222020120121100200202012121221002222010010011022110201010110211212210102001210121102"
    "000200211110121211121021210001112000211112102111211200101002122212220110120001021101201010"
    "110101110002210220212022012211220202021210011122100210111100102001100212202021110202012020"
    "122120102201121222110122212011100010022001110011102022011201102211200121220001201021112121"
    "112122212122200222112220012221111121000001221010002100200110020002021200011210012110020022"
    "101020121220022020122101121121012002122111102122122001100100111210010100210102021122010011"
    "011011002012211020102010022002002220200112222122102110020112220002220110011010022202201010"
    "001022112011210110212222211002111212221111120200221121221112222220020212021110010111121022"
    "21212211021120211220";

/* the same for 127.0.0.1:21201 weight 1, 127.0.0.1:21202 weight 2, cache-3.example:21203
 * weight 5 (a host name is hashed as written, never resolved) */
static const char owners_weighted[] =
    "222121212222202222221221022012012221122121222222210212112121111201212222221121222022020212"
    "222221102221012202202121221212112011012222221222011112211222222212222211211122212211202212"
    "111120100121221222020022202210220222002222212202221222111222112222220222101102222211112222"
    "222222122111221222220222121111011122122122201021110222220121120202120122222221021021102222"
    "221211212101222120112021002212122222002221102222211212212212220222122202221211022122212222"
    "112222220222202122212212122221212200212222212122112122212122221222122222212211221222221201"
    "122121212202010222222222021122222221220021222120222222221022011211202222211122122222202002"
    "222221222211112210122002220212202112111222222222221202112112220222102112022121010220121121"
    "001201212112222221211201221111201022022122210201121012202020211220121201221212220222222212"
    "211211122122222021001222021221202121122222020212222122121211020022222212222202222101222122"
    "111212121221222210202212202221121122101112220122201211212222121112222112212022221012122212"
    "012221222221022120222202222022112222110220022102021202022220222212021020222222202222222220"
    "210001221122102222210122022222112020021000200212122212012202220202202222222122121202220100"
    "222212221222120222222222212022222022121120101021112222112211102112122110022012202020022222"
    "212222022222222200120212222221122221222121111022222220222122211021222020222222221102221222"
    "222212222012022212212212102212222122202021212122222122102121202122112121222222202221101211"
    "122022212221212222112211121100222112212222222222122011222102021222222111110222222121112222"
    "202212010221222222022101022121022222220221112211112212221222022201220122112222022222211111"
    "112221112021122202222022102202222122202112121222202222222220222121220222122212102221120222"
    "122222221222212102221122001212222222210012212222012221222222211222122122111212022222222211"
    "112020111202222210222221210121222222101022221221221222112111222222222121222021222222021002"
    "222222222220212222201222020221211121221212112122222022022211212210201222022222211222221212"
    "02121221001021210212";

/* pylibmc {"ketama": True} over the same two lists, and with "hash": "fnv1a_32" over the first */
static const char ketama_equal[] =
    "000101121220211200020101011122210200102101010122211211210221220200111202112220121011111100"
    "010202101001022112220121210022211011022122200100011102210221102201102202100100120100020101"
    "112212011111000202211200120211002011020100200122210222010220201110101100201222012020122201"
    "002212110001220221101112022010002110221111100000020122012201002100210102022102110101122101"
    "022121210212121000201212200220102111010000210202021011200012001212211011201200122221010022"
    "001002112111021200110122202012011112122221110221121200022202002120210220110112020010110021"
    "010211112001200000202202021201100200221211112221120022000122222011100200002122220220102022"
    "201200021102210220100001010211020221020102220110122222100101020201120211000021212001120012"
    "110012212010202200200112210111012011002102021200012021120102102110002100020021200210212121"
    "121101111200100011022200012022101200221120122200100000002220011121202201121112202112001112"
    "212122000022220121202220001201122011112201210102020022110002122010012210010201020020200220"
    "022101222120111020000101221101010121222201111000221002121021100122100002002120220012000200"
    "012222112112010112201220021102201011012120210111211221110120012101202120200222001100100210"
    "011020020112001202020211121222021111220021010000200021111001000122201102122020002220202221"
    "121221120222110100111120001222002001201102202020221202201002202220011020122001111000022001"
    "020212010000002010000001202110201020012001000112120210222112200110211011011202200212122000"
    "100211020210021212010201112021211011120221010000000201220210212100022020220020102211221220"
    "022011210010012101122220011220111102222201011202210012210002221220012100100100001002001112"
    "001120222120110101120002020211020012112102120110121012202002011112021112022221210221221200"
    "001200221120201102111010110122120202122202022122122222010022100101120210201212122102000020"
    "200002221021122120221102011201000222020210000021121002002120200102202001220002100021011120"
    "222010012200102012120122102200012210022102020012002021010002020112100001011012212202201110"
    "11020020020020102101";
static const char ketama_weighted_nodes[] =
    "222212012222211212202112102122221222221111220221222022121222122101122022021211212121202222"
    "220212222222212221222202210222221012011121121202222100122122011221121211212101122201202122"
    "222222222222201121222121222221211121222222221221222222022221112222121211110222221222200212"
    "112220212222112221221222220121122121122122222222221212222212110211111212121222222221211222"
    "112222220212122110222121222212211222222222210222111222220222222111221012122122100220222020"
    "112122200022122221211221221222202211122212221212121220011220212121212122220211222222122221"
    "121222212222201021222002120212211221111221121221201022222211112022112121021101222122121212"
    "222020221112012210212212122202210210212201111221122222212211220102212221222221122221222021"
    "022221212212111100220112212212222212222222022222011222212211120120120102212221222121212012"
    "222012120021222102202022102200010122221022222211201002122221202212221202222222212121221212"
    "122222220210212111212112212202202111222202222222122121222020220221012212122221210201212211"
    "122211202222222222212222221222210222112011222212221202222222222220212112212022222021022201"
    "011222212221122012122122222222112121220221121222222220022122020202222212121001222220122122"
    "122222212121202212002220212001020120220122122202221210220212221122122100221212021222211101"
    "122202221222211221022202222221022121122222201202111122102120222121222202111202222101111211"
    "202210001220212222220202201211220220112122102221222202021222211102012022222211210222221212"
    "022212222221222221122221212211221222012211122120201122212222212022122212220220201210021221"
    "202212210010222122220221222022222222122121122210222222202222212012222120202122221222011222"
    "122122222122212211022222212222122222211000011122120012110220222221211222221202122212121222"
    "221222222122222022222121211221111200222222112212122221012122221111222212021022221112122210"
    "220022222222211122212210202211222202102211201012102021020022202111221111112202221022102112"
    "221121112220200122221222011022221122210022112212221211220212022001022222212221222212201122"
    "11220221221221221021";
static const char ketama_fnv1a_32[] =
    "020022222201000000111111111111111111110011111111111111111111000000001122000001112202000000"
    "111111111111111111111111111111000000001111111111111111110011011100001111111111111111111111"
    "111111111100000000011111000110000100110000001001222022222200222222220020022222221111111111"
    "000000112000222222102222222200111111111111111111111111111111111111111111111111111111111111"
    "111111111111111111111111111111111111111100000020220022222200000000002222000000000000222222"
    "222220221222222222002222222112222222222200002022220022000000000210001101001111001111111111"
    "111101111111111111110000002001010011110011111111001111111111000000000000000000001111111111"
    "111111111111111111111111111111111111111122020000000000000000111000000011111111111111111121"
    "112222221122222222221221222222000000202211111111111111111122222222221122222222211111111100"
    "111111111100000000110000000011111111111100000000001111111111111111111100000000000000000011"
    "222200220022222222201111111111000020220011111111111111111111000022220022222022000000000000"
    "000000002011111111111111111111111111111111111111111111111111111111111111111111111111111111"
    "111111111111111111111111111111111111111100001001001111111111111111111111111111111111111111"
    "111111111111111111111111111111111111111111111111110000000000111111111111111100000111000000"
    "111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111"
    "111111111111111111111111111111111111111111111111112222222222222222222222222222222222112211"
    "211221222200222222112220222220002222222222222122212222222222000020002200000000002222222211"
    "221122221122222222222222222211222222222022220000222221222211111122221111111111111111111111"
    "111111111111111111111111111111111111111111111111110100111111110001111111001111110020020000"
    "111111010011100000110000220011001002001122000000110001111100001100012011111111001100000011"
    "110000001111111111001111111111111111111111111111001111111111020000000000000000011111111111"
    "020000000011111110001111000022220000100022022012002222222222222222222200000000220020110022"
    "22220022002002211222";

/* nutcracker 0.5.0, distribution: ketama (tests/unit/ring_vectors.py) */
/* own_default (hash unset: fnv1a_64): 127.0.0.2:11211:1, 127.0.0.1:26102:2, 127.0.0.3:11211:5 */
static const char own_default[] =
    "222222222200000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000022222222221111111111222222222222222222222222222222222222222222222222222222222222"
    "111111111111111111112222222222222222222222222222222222222222222222222222222222222222222222"
    "222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222"
    "222222222222222222222222222222222222222200000000000000000000222222222200000000000000000000"
    "000000000000000000000000000000000000000000000000001111111111111111111111111111111111111111"
    "111111111111111111111111111111111111111111111111111111111111222222222222222222222222222222"
    "222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222"
    "222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222"
    "222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222"
    "111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111"
    "111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111"
    "111111111111111111110000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000111111111111111111111111111111111111111111111111111111111111"
    "111111111111111111111111111111111111111122222222222222222222222222222222222222222222222222"
    "222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222"
    "222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222"
    "222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222"
    "222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222"
    "222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222"
    "222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222"
    "222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222"
    "22222222222222222222";
/* own_named_md5 (hash: md5): 127.0.0.2:11211:1 alpha, 127.0.0.1:26102:3 beta,
 * 127.0.0.3:11211:2 gamma */
static const char own_named_md5[] =
    "202102021002210201221112212122010111111121202111210211212021122211222021022220211001211122"
    "111221012220212121102111111121122121111022200121111222110102220121102222112210220122111111"
    "212212112122110220112111211021112211102221011112211201212110111112211100101021122221201111"
    "110121220221112212111002221111121121210111212211111112110021110111121111012211111100212010"
    "121221111002112211212222011012211112201112121210212111121202110112212212211112221211201111"
    "220112210122011111111210211222221112212122212122021001110111022122212010112210211201102011"
    "122111111222121121121111202211112121122212111020212121112101112111211111112111110210120011"
    "101220212112220121202101211010021122122111112121122112221211201000111100122211122112022012"
    "100200222211020111221122121211111212211222212121201122120112121211220212211011101201022212"
    "211122021022112211011102101222121112211121201212220222202112211111112021112210211210111121"
    "112222111012122100222021110122212221120122211122212001122222211212211122121221112201112100"
    "112101222221212111112021002221022112000121221202012121122101121122212201111202212111120112"
    "120221110121121201122011221201102121122212112201111111221121211212112222120011221122201212"
    "111120022011111211111111221211121122112111211102222020100122211212112211121111111011022002"
    "220212211110122211102112022021102221121222112110021211202222112012020021021111111221212112"
    "122120112111121212222211022121112011201112221122102112121212221011020112112001121120210211"
    "120111122220021021112222210212221110111012212111022011221110222212012121100011212202001211"
    "121122112011001201011102120111221210011122212220121101111122122220021120210212222021101111"
    "010222121002211111111110212021121111110202212221122102222221120211010122201210011212100122"
    "111211112112211122102112211221212110111111211110222111001120111221111021212212201122021111"
    "102221102121111200022222021110210111222012122122211211112210111211211112011112210101101210"
    "010211212222122221112111222001110011121211121220011121221122211122211110211220112111121212"
    "12202111111121102122";
/* own_tag_murmur (hash: murmur, hash_tag: "{}"): as own_default, keys "{gG}:key:I" */
static const char own_tag_murmur[] =
    "222222120222211222222122222211122202121112221022211212222222022111222222202222222202111201"
    "212120222222212022221122222212222221112220212111222102221121222222202211122222220222222220"
    "211120121212022222221202222112222221222222111222021211122210222112122222220221112222222022"
    "222222021112012121202222222120222211222222122222211122202121112221022211212222222022111222"
    "222202222222202111201212120222222212022221122222212222221112220212111222102221121222222202"
    "211122222220222222220211120121212022222221202222112222221222222111222021211122210222112122"
    "222220221112222222022222222021112012121202222222120222211222222122222211122202121112221022"
    "211212222222022111222222202222222202111201212120222222212022221122222212222221112220212111"
    "222102221121222222202211122222220222222220211120121212022222221202222112222221222222111222"
    "021211122210222112122222220221112222222022222222021112012121202222222120222211222222122222"
    "211122202121112221022211212222222022111222222202222222202111201212120222222212022221122222"
    "212222221112220212111222102221121222222202211122222220222222220211120121212022222221202222"
    "112222221222222111222021211122210222112122222220221112222222022222222021112012121202222222"
    "120222211222222122222211122202121112221022211212222222022111222222202222222202111201212120"
    "222222212022221122222212222221112220212111222102221121222222202211122222220222222220211120"
    "121212022222221202222112222221222222111222021211122210222112122222220221112222222022222222"
    "021112012121202222222120222211222222122222211122202121112221022211212222222022111222222202"
    "222222202111201212120222222212022221122222212222221112220212111222102221121222222202211122"
    "222220222222220211120121212022222221202222112222221222222111222021211122210222112122222220"
    "221112222222022222222021112012121202222222120222211222222122222211122202121112221022211212"
    "222222022111222222202222222202111201212120222222212022221122222212222221112220212111222102"
    "221121222222202211122222220222222220211120121212022222221202222112222221222222111222021211"
    "12221022211212222222";

/* keys "key:I", or "{gG}:key:I" with G = I % 97 when tagged, as ring_vectors.py writes them */
static void check_owners(const struct ring_config *cfg, const struct ring_node *nodes, size_t n,
                         bool tagged, const char *owners)
{
    struct ring *r = ring_create(cfg, nodes, n);
    char key[64];
    int bad = 0;

    assert_non_null(r);
    assert_int_equal(strlen(owners), NKEYS);
    for (int i = 0; i < NKEYS; i++) {
        int len = tagged ? snprintf(key, sizeof(key), "{g%d}:key:%d", i % 97, i)
                         : snprintf(key, sizeof(key), "key:%d", i);
        size_t got = ring_node_for_key(r, key, (size_t)len);
        if (got != (size_t)(owners[i] - '0')) {
            if (bad < 10) {
                printf("# FAIL %s: ring says node %zu, the client says %c\n", key, got,
                       owners[i]);
            }
            bad++;
        }
    }
    ring_free(r);
    assert_int_equal(bad, 0);
}

#define PLAIN_KEYS false
#define TAGGED_KEYS true

static const struct ring_node lm_equal[] = {
    {"127.0.0.1", 11211, 1, ""},
    {"127.0.0.1", 11212, 1, ""},
    {"127.0.0.1", 11213, 1, ""},
};

/* a host name is hashed as written, never resolved */
static const struct ring_node lm_weighted[] = {
    {"127.0.0.1", 21201, 1, ""},
    {"127.0.0.1", 21202, 2, ""},
    {"cache-3.example", 21203, 5, ""},
};

static const struct ring_node tw_plain[] = {
    {"127.0.0.2", 11211, 1, ""},
    {"127.0.0.1", 26102, 2, ""},
    {"127.0.0.3", 11211, 5, ""},
};

static const struct ring_node tw_named[] = {
    {"127.0.0.2", 11211, 1, "alpha"},
    {"127.0.0.1", 26102, 3, "beta"},
    {"127.0.0.3", 11211, 2, "gamma"},
};

static void test_ketama_weighted_matches_libmemcached(void **state)
{
    (void)state;
    const struct ring_config cfg = {RING_LIBMEMCACHED_KETAMA_WEIGHTED, RING_HASH_DEFAULT, ""};

    check_owners(&cfg, lm_equal, 3, PLAIN_KEYS, owners_equal);
    check_owners(&cfg, lm_weighted, 3, PLAIN_KEYS, owners_weighted);
}

static void test_ketama_matches_libmemcached(void **state)
{
    (void)state;
    struct ring_config cfg = {RING_LIBMEMCACHED_KETAMA, RING_HASH_DEFAULT, ""};

    /* 100 one-at-a-time points per server */
    check_owners(&cfg, lm_equal, 3, PLAIN_KEYS, ketama_equal);
    /* a weight above 1: MD5 points, 160 per share, keys still one-at-a-time */
    check_owners(&cfg, lm_weighted, 3, PLAIN_KEYS, ketama_weighted_nodes);
    cfg.hash = RING_HASH_FNV1A_32;
    check_owners(&cfg, lm_equal, 3, PLAIN_KEYS, ketama_fnv1a_32);
}

static void test_twemproxy_matches_nutcracker(void **state)
{
    (void)state;
    struct ring_config cfg = {RING_TWEMPROXY_KETAMA, RING_HASH_DEFAULT, ""};

    check_owners(&cfg, tw_plain, 3, PLAIN_KEYS, own_default);
    cfg.hash = RING_HASH_MD5;
    check_owners(&cfg, tw_named, 3, PLAIN_KEYS, own_named_md5);
    cfg.hash = RING_HASH_MURMUR;
    strcpy(cfg.hash_tag, "{}");
    check_owners(&cfg, tw_plain, 3, TAGGED_KEYS, own_tag_murmur);
}

static void test_hash_tag(void **state)
{
    (void)state;
    const struct ring_config cfg = {RING_TWEMPROXY_KETAMA, RING_HASH_MD5, "{}"};
    struct ring *r = ring_create(&cfg, tw_plain, 3);

    assert_non_null(r);
    /* the part between the first '{' and the next '}' */
    assert_int_equal(ring_key_hash(r, "user:{42}:name", 14),
                     ring_hash_key(RING_HASH_MD5, "42", 2));
    assert_int_equal(ring_key_hash(r, "a{b}c{d}", 8), ring_hash_key(RING_HASH_MD5, "b", 1));
    /* an empty tag, a missing '}' or no tag at all: the whole key */
    assert_int_equal(ring_key_hash(r, "x{}y", 4), ring_hash_key(RING_HASH_MD5, "x{}y", 4));
    assert_int_equal(ring_key_hash(r, "x{y", 3), ring_hash_key(RING_HASH_MD5, "x{y", 3));
    assert_int_equal(ring_key_hash(r, "x}y{", 4), ring_hash_key(RING_HASH_MD5, "x}y{", 4));
    /* nutcracker hashes an empty key to 0 */
    assert_int_equal(ring_key_hash(r, "", 0), 0);
    ring_free(r);
}

static void test_point_counts(void **state)
{
    (void)state;
    struct ring_config cfg = {RING_LIBMEMCACHED_KETAMA_WEIGHTED, RING_HASH_DEFAULT, ""};
    struct ring_node nodes[8];

    memset(nodes, 0, sizeof(nodes));
    for (size_t n = 1; n <= 8; n++) {
        for (size_t i = 0; i < n; i++) {
            snprintf(nodes[i].host, sizeof(nodes[i].host), "10.1.0.%zu", i + 1);
            nodes[i].port = 11211;
            nodes[i].weight = 1;
        }
        struct ring *r = ring_create(&cfg, nodes, n);
        assert_non_null(r);
        /* 160 points per server of equal weight: 40 MD5 digests of 4 points each */
        assert_int_equal(ring_point_count(r), 160 * n);
        ring_free(r);
        /* libmemcached's plain ketama: 100 per server while no weight is above 1 */
        cfg.kind = RING_LIBMEMCACHED_KETAMA;
        r = ring_create(&cfg, nodes, n);
        assert_non_null(r);
        assert_int_equal(ring_point_count(r), 100 * n);
        ring_free(r);
        cfg.kind = RING_LIBMEMCACHED_KETAMA_WEIGHTED;
    }
    /* weights 1 and 3 of 2 servers: shares 1/4 and 3/4 of 2 * 160 points */
    nodes[0].weight = 1;
    nodes[1].weight = 3;
    struct ring *r = ring_create(&cfg, nodes, 2);
    assert_non_null(r);
    assert_int_equal(ring_point_count(r), 80 + 240);
    ring_free(r);
}

static void test_one_node_and_wrap_around(void **state)
{
    (void)state;
    const struct ring_config cfg = {RING_LIBMEMCACHED_KETAMA_WEIGHTED, RING_HASH_DEFAULT, ""};
    const struct ring_node one[] = {{"127.0.0.1", 21201, 1, ""}};
    const struct ring_node two[] = {{"127.0.0.1", 21201, 1, ""}, {"127.0.0.1", 21202, 1, ""}};
    struct ring *r = ring_create(&cfg, one, 1);
    uint32_t first, last;
    size_t node;

    assert_non_null(r);
    assert_int_equal(ring_node_for_key(r, "anything", 8), 0);
    ring_free(r);

    /* hashes past the last point belong to the first point's node, as hash 0 does */
    r = ring_create(&cfg, two, 2);
    assert_non_null(r);
    ring_point(r, 0, &first, &node);
    ring_point(r, ring_point_count(r) - 1, &last, &node);
    assert_true(first < last);
    assert_int_equal(ring_lookup(r, UINT32_MAX), ring_lookup(r, 0));
    assert_int_equal(ring_lookup(r, last + 1), ring_lookup(r, first));
    assert_int_equal(ring_lookup(r, last), node);
    ring_free(r);

    assert_null(ring_create(&cfg, one, 0));
}

static void test_spread_is_even(void **state)
{
    (void)state;
    const struct ring_config cfg = {RING_LIBMEMCACHED_KETAMA_WEIGHTED, RING_HASH_DEFAULT, ""};
    const struct ring_node nodes[] = {
        {"127.0.0.1", 30001, 1, ""}, {"127.0.0.1", 30002, 1, ""},
        {"127.0.0.1", 30003, 1, ""}, {"127.0.0.1", 30004, 1, ""},
    };
    struct ring *r = ring_create(&cfg, nodes, 4);
    unsigned count[4] = {0};
    uint64_t space[4], total = 0;
    char key[32];

    assert_non_null(r);
    for (int i = 0; i < 40000; i++) {
        int len = snprintf(key, sizeof(key), "key:%d", i);
        count[ring_node_for_key(r, key, (size_t)len)]++;
    }
    ring_node_space(r, space);
    /* 160 points per node keep each share near 1/4, of keys and of the hash space */
    for (int i = 0; i < 4; i++) {
        assert_in_range(count[i], 7500, 12500);
        assert_in_range(space[i], UINT64_C(1) << 29, UINT64_C(3) << 29);
        total += space[i];
    }
    assert_true(total == UINT64_C(1) << 32);
    ring_free(r);
}

/* Every range of a diff is owned as it says, at both ends and in the middle. */
static void check_diff(const struct ring *a, const struct ring *b)
{
    struct ring_range *ranges;
    size_t n;
    uint64_t next = 0;

    assert_int_equal(ring_diff(a, b, &ranges, &n), 0);
    assert_true(n > 0);
    for (size_t i = 0; i < n; i++) {
        uint32_t probe[3] = {ranges[i].start, ranges[i].end,
                             ranges[i].start + (ranges[i].end - ranges[i].start) / 2};
        assert_true(ranges[i].start == next);
        assert_true(ranges[i].start <= ranges[i].end);
        for (int p = 0; p < 3; p++) {
            assert_int_equal(ring_lookup(a, probe[p]), ranges[i].old_node);
            assert_int_equal(ring_lookup(b, probe[p]), ranges[i].new_node);
        }
        /* maximal: a neighbour has another owner pair (the two ends of the space aside) */
        if (i > 0) {
            assert_true(ranges[i - 1].old_node != ranges[i].old_node
                        || ranges[i - 1].new_node != ranges[i].new_node);
        }
        next = (uint64_t)ranges[i].end + 1;
    }
    assert_true(next == UINT64_C(1) << 32);
    free(ranges);
}

static void test_diff(void **state)
{
    (void)state;
    const struct ring_config cfg = {RING_TWEMPROXY_KETAMA, RING_HASH_DEFAULT, ""};
    const struct ring_node three[] = {
        {"10.0.0.1", 11211, 1, ""}, {"10.0.0.2", 11211, 1, ""}, {"10.0.0.3", 11211, 1, ""},
    };
    const struct ring_node four[] = {
        {"10.0.0.1", 11211, 1, ""}, {"10.0.0.2", 11211, 1, ""}, {"10.0.0.3", 11211, 1, ""},
        {"10.0.0.4", 11211, 1, ""},
    };
    struct ring *a = ring_create(&cfg, three, 3), *b = ring_create(&cfg, four, 4);
    struct ring_range *ranges;
    size_t n;
    uint64_t moved = 0;

    assert_non_null(a);
    assert_non_null(b);
    check_diff(a, b);
    check_diff(b, a);
    check_diff(a, a);
    /* adding a fourth node moves only ranges to it: about a quarter of the space */
    assert_int_equal(ring_diff(a, b, &ranges, &n), 0);
    for (size_t i = 0; i < n; i++) {
        if (ranges[i].old_node != ranges[i].new_node) {
            assert_int_equal(ranges[i].new_node, 3);
            moved += (uint64_t)ranges[i].end - ranges[i].start + 1;
        }
    }
    free(ranges);
    assert_in_range(moved, UINT64_C(3) << 28, UINT64_C(5) << 28);
    /* the range through 2^32-1 wraps to each ring's own first point: one node before, and
     * a new ring whose first point is not its node 0 */
    const struct ring_node one[] = {{"10.0.0.1", 11211, 1, ""}};
    struct ring *c = ring_create(&cfg, one, 1);
    struct ring_node rotated[4];
    struct ring *d = NULL;
    size_t first_node = 0;
    uint32_t first_value;
    for (size_t shift = 0; shift < 4 && first_node == 0; shift++) {
        for (size_t i = 0; i < 4; i++) {
            rotated[i] = four[(i + shift) % 4];
        }
        ring_free(d);
        d = ring_create(&cfg, rotated, 4);
        assert_non_null(d);
        ring_point(d, 0, &first_value, &first_node);
    }
    assert_true(first_node != 0);
    check_diff(c, d);
    check_diff(d, c);
    ring_free(c);
    ring_free(d);
    /* the same ring: one range per arc, nothing moves */
    assert_int_equal(ring_diff(a, a, &ranges, &n), 0);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(ranges[i].old_node, ranges[i].new_node);
    }
    free(ranges);
    ring_free(a);
    ring_free(b);
}

static void test_validate(void **state)
{
    (void)state;
    struct ring_config cfg = {RING_LIBMEMCACHED_KETAMA, RING_HASH_DEFAULT, ""};
    struct ring_node nodes[2] = {{"10.0.0.1", 11211, 1, ""}, {"10.0.0.1", 11211, 2, ""}};
    char err[256];

    assert_int_equal(ring_validate(&cfg, nodes, 2, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "10.0.0.1:11211"));
    assert_null(ring_create(&cfg, nodes, 2));
    nodes[1].port = 11212;
    assert_int_equal(ring_validate(&cfg, nodes, 2, err, sizeof(err)), 0);
    cfg.hash = RING_HASH_CRC16;
    assert_int_equal(ring_validate(&cfg, nodes, 2, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "crc16"));
    cfg.hash = RING_HASH_DEFAULT;
    strcpy(cfg.hash_tag, "{}");
    assert_int_equal(ring_validate(&cfg, nodes, 2, err, sizeof(err)), -1);
    cfg.kind = RING_TWEMPROXY_KETAMA;
    assert_int_equal(ring_validate(&cfg, nodes, 2, err, sizeof(err)), 0);
    strcpy(cfg.hash_tag, "{");
    assert_int_equal(ring_validate(&cfg, nodes, 2, err, sizeof(err)), -1);
    cfg.hash_tag[0] = '\0';
    /* names are identities too: the same name twice is one node */
    strcpy(nodes[0].name, "same");
    strcpy(nodes[1].name, "same");
    assert_int_equal(ring_validate(&cfg, nodes, 2, err, sizeof(err)), -1);
    /* nutcracker hashes at most 85 bytes of "name-k"; weight 2 of 3 gives 212 points, so
     * k goes up to 52: 82 + 3 bytes fit, 83 + 3 do not */
    nodes[1].weight = 2;
    memset(nodes[1].name, 'n', 82);
    nodes[1].name[82] = '\0';
    assert_int_equal(ring_validate(&cfg, nodes, 2, err, sizeof(err)), 0);
    memset(nodes[1].name, 'n', 83);
    nodes[1].name[83] = '\0';
    assert_int_equal(ring_validate(&cfg, nodes, 2, err, sizeof(err)), -1);
    /* libmemcached has no such limit and never looks at names */
    cfg.kind = RING_LIBMEMCACHED_KETAMA_WEIGHTED;
    assert_int_equal(ring_validate(&cfg, nodes, 2, err, sizeof(err)), 0);
}

/* --- parsing --- */

static void test_parse_node(void **state)
{
    (void)state;
    struct ring_node n;
    char err[256];

    assert_int_equal(ring_parse_node("127.0.0.1:11211", &n, err, sizeof(err)), 0);
    assert_string_equal(n.host, "127.0.0.1");
    assert_int_equal(n.port, 11211);
    assert_int_equal(n.weight, 1);
    assert_string_equal(n.name, "");
    assert_int_equal(ring_parse_node("cache-1.example:21201:7", &n, err, sizeof(err)), 0);
    assert_string_equal(n.host, "cache-1.example");
    assert_int_equal(n.port, 21201);
    assert_int_equal(n.weight, 7);
    assert_int_equal(ring_parse_node("[::1]:22122:3", &n, err, sizeof(err)), 0);
    assert_string_equal(n.host, "::1");
    assert_int_equal(n.port, 22122);
    assert_int_equal(n.weight, 3);
    assert_int_equal(ring_parse_node("[fe80::1]:1", &n, err, sizeof(err)), 0);
    assert_string_equal(n.host, "fe80::1");
    assert_int_equal(ring_parse_node("10.0.0.1:11211:2 alpha", &n, err, sizeof(err)), 0);
    assert_string_equal(n.host, "10.0.0.1");
    assert_int_equal(n.weight, 2);
    assert_string_equal(n.name, "alpha");
    assert_int_equal(ring_parse_node("h:65535:1000000", &n, err, sizeof(err)), 0);

    const char *bad[] = {
        "", "host", "host:", ":11211", "host:0", "host:65536", "host:-1", "host:1x",
        "host:1:0", "host:1:1000001", "host:1:x", "host:1:", "host:1:2:3", "[::1]", "[::1]22",
        "[::1:22", "[]:1", "a]:1", "host:1 ", "host:1 two words", "ho\tst:1", "host:1,x:2",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        if (ring_parse_node(bad[i], &n, err, sizeof(err)) != -1) {
            fail_msg("accepted \"%s\"", bad[i]);
        }
        assert_true(err[0] != '\0');
    }
    char longhost[RING_HOST_MAX + 8];
    memset(longhost, 'h', RING_HOST_MAX + 1);
    strcpy(longhost + RING_HOST_MAX + 1, ":1");
    assert_int_equal(ring_parse_node(longhost, &n, err, sizeof(err)), -1);
    strcpy(longhost + RING_HOST_MAX, ":1");
    assert_int_equal(ring_parse_node(longhost, &n, err, sizeof(err)), 0);
}

static void test_parse_nodes(void **state)
{
    (void)state;
    struct ring_node *nodes;
    size_t n;
    char err[256];

    assert_int_equal(ring_parse_nodes("a:1,b:2:3", &nodes, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 2);
    assert_string_equal(nodes[0].host, "a");
    assert_int_equal(nodes[1].port, 2);
    assert_int_equal(nodes[1].weight, 3);
    free(nodes);
    assert_int_equal(ring_parse_nodes(" a:1 x , [::1]:2 ", &nodes, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 2);
    assert_string_equal(nodes[0].name, "x");
    assert_string_equal(nodes[1].host, "::1");
    free(nodes);
    assert_int_equal(ring_parse_nodes("a:1", &nodes, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 1);
    free(nodes);

    const char *bad[] = {"", ",", "a:1,", ",a:1", "a:1,,b:2", "a:1,b", "a:1;b:2"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        nodes = (struct ring_node *)1;
        if (ring_parse_nodes(bad[i], &nodes, &n, err, sizeof(err)) != -1) {
            fail_msg("accepted \"%s\"", bad[i]);
        }
        assert_null(nodes);
    }
}

/* --- twemproxy YAML --- */

static char yaml_path[64];

static const char *write_yaml(const char *text)
{
    FILE *f;

    strcpy(yaml_path, "/tmp/test_ring_XXXXXX");
    int fd = mkstemp(yaml_path);
    assert_true(fd >= 0);
    f = fdopen(fd, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return yaml_path;
}

static int load(const char *text, const char *pool, struct ring_config *cfg,
                struct ring_node **nodes, size_t *n, char *err, size_t errlen)
{
    const char *path = write_yaml(text);
    int rc = ring_load_twemproxy(path, pool, cfg, nodes, n, err, errlen);
    unlink(path);
    return rc;
}

static const char two_pools[] =
    "alpha:\n"
    "  listen: 127.0.0.1:22121\n"
    "  hash: fnv1a_64\n"
    "  distribution: ketama\n"
    "  auto_eject_hosts: false\n"
    "  servers:\n"
    "   - 127.0.0.1:11211:1\n"
    "   - 127.0.0.1:11212:2 beta-node\n"
    "   - ::1:11213:3\n"
    "gamma:\n"
    "  listen: 127.0.0.1:22122\n"
    "  hash: murmur\n"
    "  hash_tag: \"{}\"\n"
    "  servers: [\"10.0.0.1:11211:1\", \"10.0.0.2:11211:1\"]\n";

static void test_yaml_good(void **state)
{
    (void)state;
    struct ring_config cfg;
    struct ring_node *nodes;
    size_t n;
    char err[256];

    assert_int_equal(load(two_pools, NULL, &cfg, &nodes, &n, err, sizeof(err)), 0);
    assert_int_equal(cfg.kind, RING_TWEMPROXY_KETAMA);
    assert_int_equal(cfg.hash, RING_HASH_FNV1A_64);
    assert_string_equal(cfg.hash_tag, "");
    assert_int_equal(n, 3);
    assert_string_equal(nodes[0].host, "127.0.0.1");
    assert_int_equal(nodes[0].port, 11211);
    assert_int_equal(nodes[0].weight, 1);
    assert_string_equal(nodes[0].name, "");
    assert_string_equal(nodes[1].name, "beta-node");
    assert_int_equal(nodes[1].weight, 2);
    /* cut from the end as nutcracker does: no brackets around IPv6 */
    assert_string_equal(nodes[2].host, "::1");
    assert_int_equal(nodes[2].port, 11213);
    assert_int_equal(nodes[2].weight, 3);
    free(nodes);

    assert_int_equal(load(two_pools, "gamma", &cfg, &nodes, &n, err, sizeof(err)), 0);
    assert_int_equal(cfg.hash, RING_HASH_MURMUR);
    assert_string_equal(cfg.hash_tag, "{}");
    assert_int_equal(n, 2);
    assert_string_equal(nodes[1].host, "10.0.0.2");
    free(nodes);

    /* no hash: nutcracker's default, fnv1a_64 */
    assert_int_equal(load("p:\n  servers:\n  - h:1:1\n", NULL, &cfg, &nodes, &n, err,
                          sizeof(err)), 0);
    assert_int_equal(cfg.hash, RING_HASH_FNV1A_64);
    free(nodes);
}

static void test_yaml_bad(void **state)
{
    (void)state;
    static const struct {
        const char *yaml;
        const char *pool;
        const char *says;       /* part of the message */
    } bad[] = {
        {"p:\n  distribution: modula\n  servers:\n  - h:1:1\n", NULL, "ketama"},
        {"p:\n  distribution: random\n  servers:\n  - h:1:1\n", NULL, "ketama"},
        {"p:\n  hash: sha1\n  servers:\n  - h:1:1\n", NULL, "sha1"},
        {"p:\n  hash: crc\n  servers:\n  - h:1:1\n", NULL, "crc"},
        {"p:\n  hash_tag: \"{{}\"\n  servers:\n  - h:1:1\n", NULL, "two characters"},
        {"p:\n  servers:\n  - h:1\n", NULL, "host:port:weight"},
        {"p:\n  servers:\n  - h:1:0\n", NULL, "weight"},
        {"p:\n  servers:\n  - h:70000:1\n", NULL, "port"},
        {"p:\n  servers:\n  - /tmp/sock:1\n", NULL, "unix"},
        {"p:\n  servers: []\n", NULL, "empty"},
        {"p:\n  servers: h:1:1\n", NULL, "list"},
        {"p:\n  listen: 1.2.3.4:5\n", NULL, "no \"servers\""},
        {"p:\n  servers:\n  - h:1:1\n", "q", "no pool \"q\""},
        {"- a\n- b\n", NULL, "mapping"},
        {"p:\n  servers:\n  - [h:1:1\n", NULL, ":"},
        {"", NULL, "mapping"},
    };
    struct ring_config cfg;
    struct ring_node *nodes;
    size_t n;
    char err[256];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        if (load(bad[i].yaml, bad[i].pool, &cfg, &nodes, &n, err, sizeof(err)) != -1) {
            fail_msg("accepted case %zu", i);
        }
        if (strstr(err, bad[i].says) == NULL) {
            fail_msg("case %zu: \"%s\" does not say \"%s\"", i, err, bad[i].says);
        }
        assert_null(nodes);
    }
    assert_int_equal(ring_load_twemproxy("/nonexistent/x.yml", NULL, &cfg, &nodes, &n, err,
                                         sizeof(err)), -1);
    assert_non_null(strstr(err, "No such file"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_vectors),
        cmocka_unit_test(test_hash_of_empty_key),
        cmocka_unit_test(test_hash_names),
        cmocka_unit_test(test_ketama_weighted_matches_libmemcached),
        cmocka_unit_test(test_ketama_matches_libmemcached),
        cmocka_unit_test(test_twemproxy_matches_nutcracker),
        cmocka_unit_test(test_hash_tag),
        cmocka_unit_test(test_point_counts),
        cmocka_unit_test(test_one_node_and_wrap_around),
        cmocka_unit_test(test_spread_is_even),
        cmocka_unit_test(test_diff),
        cmocka_unit_test(test_validate),
        cmocka_unit_test(test_parse_node),
        cmocka_unit_test(test_parse_nodes),
        cmocka_unit_test(test_yaml_good),
        cmocka_unit_test(test_yaml_bad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
