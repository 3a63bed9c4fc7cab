#include "domain.h"
