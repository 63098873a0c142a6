/* placeholder: being written */
#include "spec.h"
