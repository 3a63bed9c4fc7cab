#include "ehlo.h"
