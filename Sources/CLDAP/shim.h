#include <ldap.h>
#include <lber.h>
