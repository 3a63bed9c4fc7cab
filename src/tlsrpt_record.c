#include "mtasts.h"
