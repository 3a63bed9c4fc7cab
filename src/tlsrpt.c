#include "tlsrpt.h"
