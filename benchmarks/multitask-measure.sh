#!/usr/bin/env bash
# Multi-task vs single-task students (mini-l2-h128, prediction losses, same epochs), sms-spam + bbc-news.
set -u
cd /work/wt-multitask
K=/work/wt-multitask/.build/release/kd
R=/work/runs/multitask/m
S=students/mini-l2-h128.json
COMMON="--student $S --losses soft_ce=1,hard_ce=0.5 --epochs ${EPOCHS:-2} --threads 2 --seed 13"
SMS="--teacher /work/main/out/demo/sms-teacher.h5 --labels /work/main/out/demo/sms-labels.h5 --data data/sms-spam"
BBC="--teacher /work/runs/multitask/bbc-teacher.h5 --labels /work/runs/multitask/bbc-labels.h5 --data data/bbc-news"
case "$1" in
  sms) /usr/bin/time -v $K distill $SMS $COMMON --out $R/sms-single.h5 > $R/sms-single.log 2> $R/sms-single.err ;;
  bbc) /usr/bin/time -v $K distill $BBC $COMMON --out $R/bbc-single.h5 > $R/bbc-single.log 2> $R/bbc-single.err ;;
  multi) /usr/bin/time -v $K distill --task sms-spam $SMS --task bbc-news $BBC $COMMON --task-sampling ${SAMPLING:-proportional} \
           --out $R/multi-${SAMPLING:-proportional}.h5 > $R/multi-${SAMPLING:-proportional}.log 2> $R/multi-${SAMPLING:-proportional}.err ;;
  eval)
    for m in sms-single; do $K eval --model $R/$m.h5 --data data/sms-spam --json --threads 2 > $R/$m.eval.json; done
    for m in bbc-single; do $K eval --model $R/$m.h5 --data data/bbc-news --json --threads 2 > $R/$m.eval.json; done
    for f in $R/multi-*.h5; do b=$(basename $f .h5)
      $K eval --model $f --task sms-spam --data data/sms-spam --json --threads 2 > $R/$b.sms.eval.json
      $K eval --model $f --task bbc-news --data data/bbc-news --json --threads 2 > $R/$b.bbc.eval.json; done
    ls -l $R/*.h5 > $R/sizes.txt ;;
esac
