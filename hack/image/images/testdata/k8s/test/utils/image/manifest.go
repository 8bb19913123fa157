// A trimmed copy of k8s.io/kubernetes test/utils/image/manifest.go (v1.37.1)
// for E2ERefs' test: the registry list and the image configs it reads.
package image

var (
	initRegistry = RegistryList{
		PromoterE2eRegistry:   "registry.k8s.io/e2e-test-images",
		InvalidRegistry:       "invalid.registry.k8s.io/invalid",
		GcRegistry:            "registry.k8s.io",
		PrivateRegistry:       "gcr.io/k8s-authenticated-test",
		DockerLibraryRegistry: "docker.io/library",
	}
)

func initImageConfigs(list RegistryList) (map[ImageID]Config, map[ImageID]Config) {
	configs := map[ImageID]Config{}
	configs[AgnhostPrev] = Config{list.PromoterE2eRegistry, "agnhost", "2.55"}
	configs[Agnhost] = Config{list.PromoterE2eRegistry, "agnhost", "2.66.1"}
	configs[AgnhostPrivate] = Config{list.PrivateRegistry, "agnhost", "2.6"}
	configs[BusyBox] = Config{list.PromoterE2eRegistry, "busybox", "1.37.0-2"}
	configs[InvalidRegistryImage] = Config{list.InvalidRegistry, "alpine", "3.1"}
	configs[Nginx] = Config{list.PromoterE2eRegistry, "nginx", "1.27.0-2"}
	// Pause - when these values are updated, also update cmd/kubelet/app/options/container_runtime.go
	configs[Pause] = Config{list.GcRegistry, "pause", "3.10.2"}
	return configs, configs
}
