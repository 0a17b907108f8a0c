#include "spool_crc32c.h"
#include "spool_sys.h"
