#include "dns.h"
