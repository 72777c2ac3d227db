#!/usr/bin/env bash
# Split-CIFAR-10 under GDumb (DC ICLR'21 / DM WACV'23 protocol) as measured in docs/continual.md:
# 5 experiences x 2 classes, ConvNet-3 width 32 learner retrained 100 epochs on the memory after each
# experience, test stream = the 1,000 CIFAR-10 test images of ../shared/data, seeds 0,1,2.
# Distilled memory: DM (and IDM) on ConvNet-3 width 32 embeddings with DSA, 64 real images per class,
# 100 iterations per update (chosen on a validation stream: the continual-select command below).
# Baselines: Avalanche's reservoir, class-balanced and herding buffers. Memory 100 and 200 images.
# One core: about 1.5 h per memory size (herding is the slowest buffer). Outputs under runs/.
set -euo pipefail
DATA_DIR="${DATA_DIR:-${DDAPPS_DATA:-../shared/data}}"
SEEDS="${SEEDS:-0,1,2}"
LEARNER=(--protocol gdumb --net convnet --net-width 32 --gdumb-epochs 100 --seeds "$SEEDS" --data-dir "$DATA_DIR"
         --threads "${THREADS:-1}")
DISTILL=(--distill-iterations 100 --distill-set net=convnet --distill-set 'net_options={"width":32}'
         --distill-set dsa=true --distill-set batch_real=64)
# The distillation setting, chosen on a validation stream carved from the training split.
ddapps continual-select --benchmark split-cifar10 --candidates 100,200 "${DISTILL[@]:2}" \
    --seeds 0,1 --mem-size 100 --net convnet --net-width 32 --gdumb-epochs 100 --data-dir "$DATA_DIR" \
    --out runs/cl-select-cifar
for mem in 100 200; do
  ddapps continual --benchmark split-cifar10 --buffer distilled:dm,reservoir,class-balanced,herding \
      --mem-size "$mem" "${LEARNER[@]}" "${DISTILL[@]}" --out "runs/cl-cifar-m$mem"
done
# A second distilling method with the same setting (IDM without its multi-formation: factor 1).
ddapps continual --benchmark split-cifar10 --buffer distilled:idm --mem-size 100 "${LEARNER[@]}" "${DISTILL[@]}" \
    --distill-set factor=1 --distill-set num_models=10 --distill-set model_train_steps=5 \
    --distill-set model_batch=128 --out runs/cl-cifar-m100-idm
python -m ddapps.continual.combine --run runs/cl-cifar-m100/results.json=DM --run runs/cl-cifar-m100-idm/results.json=IDM \
    --title "Split-CIFAR-10, memory 100, GDumb" --out runs/cl-cifar-m100-combined
