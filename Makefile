# The original README's make targets; each one calls an npm script (package.json), nothing is defined twice.
.PHONY: build run test build-client clean integration-test integration-test-postgres

build:
	npm run build

run:
	npm start -- --config config.yaml

test:
	npm test

# The test client is part of the build (src/app/client); run it with `npm run client`.
build-client: build

clean:
	npm run clean

integration-test:
	npm run integration-test

integration-test-postgres:
	npm run integration-test:postgres
