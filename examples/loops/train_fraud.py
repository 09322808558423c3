#!/usr/bin/python3
"""Trains the fraud_trees model on a training set the retraining loop exported.

The loop runs it as `train_fraud.py --train {train} --out {output}/xgboost.json`: the CSV holds
id,row,time,version,label and one column per input element ("input__0:0" ... "input__0:15"); an
empty or NaN cell is a missing value, as XGBoost and the tree engine both treat it. The model is
written in XGBoost's JSON format, the file the model's config.pbtxt serves.
"""
import argparse
import csv
import math
import sys

import numpy as np
import xgboost as xgb


def read_training_set(path):
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        features = [i for i, name in enumerate(header) if ":" in name]
        label = header.index("label")
        x, y = [], []
        for row in reader:
            x.append([float(row[i]) if row[i] not in ("", "NaN") else math.nan for i in features])
            y.append(float(row[label]))
    return np.asarray(x, dtype=np.float32), np.asarray(y, dtype=np.float32)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--train", required=True, help="the training set (CSV)")
    parser.add_argument("--out", required=True, help="the model file to write (XGBoost JSON)")
    parser.add_argument("--trees", type=int, default=100)
    parser.add_argument("--depth", type=int, default=6)
    parser.add_argument("--eta", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    x, y = read_training_set(args.train)
    if len(y) == 0:
        sys.exit(f"{args.train}: no rows")
    print(f"training on {len(y)} rows, {x.shape[1]} features, positive rate {y.mean():.3f}")
    booster = xgb.train(
        {"objective": "binary:logistic", "max_depth": args.depth, "eta": args.eta,
         "seed": args.seed, "nthread": 1},
        xgb.DMatrix(x, label=y, missing=math.nan), num_boost_round=args.trees)
    booster.save_model(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
