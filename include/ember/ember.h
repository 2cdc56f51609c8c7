/* ember/ember.h — the whole user API. Include this; the per-concern headers it pulls in
 * can also be included alone. Plugin authors include <ember/backend.h> instead. */
#ifndef EMBER_EMBER_H
#define EMBER_EMBER_H

#include <ember/common.h>
#include <ember/config.h>
#include <ember/context.h>
#include <ember/tensor.h>
#include <ember/ops.h>
#include <ember/index.h>
#include <ember/conv.h>
#include <ember/loss.h>
#include <ember/autograd.h>
#include <ember/optim.h>
#include <ember/nn.h>
#include <ember/data.h>
#include <ember/io.h>
#include <ember/dist.h>

#endif
