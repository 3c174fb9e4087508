"""Write price_paid_records.csv: a small, synthetic sample in the exact format of Kaggle's "UK Housing Prices Paid".

The real file (22 million rows, 2.4 GB) cannot ship with a template, so this script makes a stand-in with the same
header and columns, deterministically (fixed seed, standard library only): running it again gives the same bytes.
Prices follow the real file's broad pattern: detached > semi-detached > terraced > flats; new builds cost more.

    python model/data/make_sample_data.py
"""

import csv
import random
import uuid
from pathlib import Path

ROWS = 3000
SEED = 20240101
OUT = Path(__file__).with_name("price_paid_records.csv")

HEADER = [
    "Transaction unique identifier",
    "Price",
    "Date of Transfer",
    "Property Type",
    "Old/New",
    "Duration",
    "Town/City",
    "District",
    "County",
    "PPDCategory Type",
    "Record Status - monthly file only",
]
# Median price by property type: Detached, Semi-detached, Terraced, Flat, Other.
BASE_PRICE = {"D": 290_000, "S": 185_000, "T": 160_000, "F": 150_000, "O": 240_000}
TYPE_WEIGHTS = {"D": 0.24, "S": 0.27, "T": 0.29, "F": 0.17, "O": 0.03}
PLACES = [
    ("LONDON", "CITY OF WESTMINSTER", "GREATER LONDON", 2.2),
    ("MANCHESTER", "MANCHESTER", "GREATER MANCHESTER", 0.9),
    ("OLDHAM", "OLDHAM", "GREATER MANCHESTER", 0.7),
    ("BRISTOL", "CITY OF BRISTOL", "CITY OF BRISTOL", 1.2),
    ("LEEDS", "LEEDS", "WEST YORKSHIRE", 0.85),
    ("NORWICH", "NORWICH", "NORFOLK", 0.95),
    ("CARDIFF", "CARDIFF", "CARDIFF", 0.9),
    ("READING", "READING", "READING", 1.4),
]


def make_row(rng: random.Random) -> list[str]:
    property_type = rng.choices(list(TYPE_WEIGHTS), weights=list(TYPE_WEIGHTS.values()))[0]
    is_new = rng.random() < 0.1
    # Flats are almost always leasehold, houses almost always freehold.
    leasehold = rng.random() < (0.9 if property_type == "F" else 0.08)
    town, district, county, place_factor = rng.choice(PLACES)
    year = rng.randint(1995, 2017)
    price = BASE_PRICE[property_type] * place_factor * (1.12 if is_new else 1.0) * (0.93 if leasehold else 1.0)
    price *= (1 + 0.05) ** (year - 2006) * rng.lognormvariate(0, 0.25)
    return [
        "{" + str(uuid.UUID(int=rng.getrandbits(128), version=4)).upper() + "}",
        str(int(round(price, -2))),
        f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d} 00:00",
        property_type,
        "Y" if is_new else "N",
        "L" if leasehold else "F",
        town,
        district,
        county,
        "A",
        "A",
    ]


def main() -> None:
    rng = random.Random(SEED)
    with OUT.open("w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(HEADER)
        writer.writerows(make_row(rng) for _ in range(ROWS))
    print(f"wrote {ROWS} rows to {OUT}")


if __name__ == "__main__":
    main()
