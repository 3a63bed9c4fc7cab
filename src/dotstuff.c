#include "dotstuff.h"
