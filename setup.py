# nbdev-2 style setup: every setting lives in settings.ini; edit there, not here.
# (The classic template's `pkg_resources` version check is dropped: setuptools >= 82 has no pkg_resources.)
from configparser import ConfigParser
from pathlib import Path
import setuptools, shlex

config = ConfigParser(delimiters=['='])
config.read('settings.ini', encoding='utf-8')
cfg = config['DEFAULT']

cfg_keys = 'version description keywords author'.split()
expected = cfg_keys + "lib_name user branch license status min_python audience language".split()
for o in expected: assert o in cfg, "missing expected setting: {}".format(o)
setup_cfg = {o: cfg[o] for o in cfg_keys}
# optional settings: left empty or out in settings.ini until the project has a public home
setup_cfg.update({k: v for k, v in (('author_email', cfg.get('author_email', '')), ('url', cfg.get('git_url', ''))) if v.strip()})

licenses = {'apache2': ('Apache Software License 2.0', 'OSI Approved :: Apache Software License')}
statuses = ['1 - Planning', '2 - Pre-Alpha', '3 - Alpha', '4 - Beta', '5 - Production/Stable', '6 - Mature', '7 - Inactive']
py_versions = '3.10 3.11 3.12'.split()

requirements = shlex.split(cfg.get('requirements', ''))
dev_requirements = shlex.split(cfg.get('dev_requirements', ''))
min_python = cfg['min_python']
lic = licenses.get(cfg['license'].lower(), (cfg['license'], None))

# The pipeline notebooks travel with the package so that `cmer run` works from a wheel too.
notebooks = sorted(str(p) for p in Path(cfg['nbs_path']).glob('*.ipynb'))

setuptools.setup(
    name=cfg['lib_name'],
    license=lic[0],
    classifiers=['Development Status :: ' + statuses[int(cfg['status'])],
                 'Intended Audience :: ' + cfg['audience'].title(),
                 'Natural Language :: ' + cfg['language'].title()]
                + ['Programming Language :: Python :: ' + o for o in py_versions[py_versions.index(min_python):]],
    license_files=['LICENSE'],
    # cmer/assets (the shipped default models) is a data-only package, declared as one so setuptools keeps it
    packages=setuptools.find_packages(include=[cfg['lib_path'], cfg['lib_path'] + '.*']) + [cfg['lib_path'] + '.assets'],
    package_data={cfg['lib_path'] + '.assets': ['*.pt', '*.json', '*.md']},
    data_files=[('share/cmer/nbs', notebooks)],
    install_requires=requirements,
    extras_require={'dev': dev_requirements},
    python_requires='>=' + cfg['min_python'],
    long_description=open('README.md', encoding='utf-8').read() if Path('README.md').exists() else '',
    long_description_content_type='text/markdown',
    zip_safe=False,
    entry_points={
        'console_scripts': cfg.get('console_scripts', '').split(),
        'nbdev': [f'{cfg.get("lib_path")}={cfg.get("lib_path")}._modidx:d'],
    },
    **setup_cfg)
